"""The layer check (tools/check-layers): lib/ is built in layers and no
file may include a header of a layer above its own."""

import os
import shutil
import subprocess

from conftest import ROOT

CHECK = os.path.join(ROOT, "tools", "check-layers")


def run(root):
    return subprocess.run([CHECK, root], capture_output=True, text=True)


def test_the_tree_is_layered():
    r = run(ROOT)
    assert r.returncode == 0, r.stdout
    assert r.stdout == ""


def copy_lib(tmp_path):
    shutil.copytree(os.path.join(ROOT, "lib"), tmp_path / "lib")
    return tmp_path


def test_an_include_from_a_higher_layer_fails(tmp_path):
    root = copy_lib(tmp_path)
    bad = root / "lib" / "util" / "strbuf.c"
    text = bad.read_text()
    bad.write_text(text.replace('#include "strbuf.h"',
                                '#include "strbuf.h"\n#include "qfile.h"', 1))
    r = run(str(root))
    assert r.returncode == 1
    assert 'lib/util/strbuf.c:' in r.stdout
    assert 'includes "qfile.h" of layer global, above util' in r.stdout


def test_the_skeleton_may_not_be_used_by_the_mail_layer(tmp_path):
    root = copy_lib(tmp_path)
    (root / "lib" / "global" / "x.c").write_text('#include "server.h"\n')
    r = run(str(root))
    assert r.returncode == 1
    assert 'lib/global/x.c:1: includes "server.h" of layer master, ' \
        'above global' in r.stdout


def test_a_file_outside_the_layers_and_an_unknown_header_fail(tmp_path):
    root = copy_lib(tmp_path)
    (root / "lib" / "loose.c").write_text("int x;\n")
    (root / "lib" / "util" / "y.c").write_text('#include "nowhere.h"\n')
    r = run(str(root))
    assert r.returncode == 1
    assert "lib/loose.c: outside every layer" in r.stdout
    assert 'lib/util/y.c:1: includes "nowhere.h", which is in no layer' \
        in r.stdout


def test_lower_and_same_layer_includes_pass(tmp_path):
    root = copy_lib(tmp_path)
    (root / "lib" / "master" / "z.c").write_text(
        '#include "server.h"\n#include "qfile.h"\n#include "strbuf.h"\n')
    assert run(str(root)).returncode == 0


def test_optional_libraries_use_only_the_base_and_mail_layers(tmp_path):
    root = copy_lib(tmp_path)
    dkim = root / "lib" / "dkim"
    dkim.mkdir()
    (dkim / "dkim.h").write_text("int dkim_x(void);\n")
    (dkim / "dkim.c").write_text('#include "dkim.h"\n#include "qfile.h"\n'
                                 '#include "strbuf.h"\n')
    assert run(str(root)).returncode == 0
    (root / "lib" / "milter").mkdir()
    (root / "lib" / "milter" / "milter.c").write_text('#include "dkim.h"\n')
    (dkim / "bad.c").write_text('#include "server.h"\n')
    r = run(str(root))
    assert r.returncode == 1
    assert 'lib/milter/milter.c:1: includes "dkim.h" of layer dkim, ' \
        'beside milter' in r.stdout
    assert 'lib/dkim/bad.c:1: includes "server.h" of layer master, ' \
        'beside dkim' in r.stdout
