"""Read Sendarix queue files in tests, independently of the C reader.

The format is documented in lib/global/qfile.h: records of TYPE LENGTH ':' DATA '\\n'.
"""


def records(data):
    """Split a queue file into (type, bytes) records; raise on bad framing."""
    out = []
    i = 0
    while i < len(data):
        t = chr(data[i])
        j = data.index(b":", i + 1)
        n = int(data[i + 1:j])
        value = data[j + 1:j + 1 + n]
        if len(value) != n or data[j + 1 + n:j + 2 + n] != b"\n":
            raise ValueError("bad record at offset %d" % i)
        out.append((t, value))
        i = j + 2 + n
    return out


class QueueFile:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.raw = f.read()
        self.records = records(self.raw)
        types = [t for t, _ in self.records]
        if not types or types[0] != "V" or types[-1] != "E":
            raise ValueError("incomplete queue file %s" % path)
        self.sender = None
        self.attrs = {}
        self.rcpts = []
        parts = []
        for t, v in self.records:
            if t == "S":
                self.sender = v.decode()
            elif t == "A":
                k, _, val = v.decode().partition("=")
                self.attrs[k] = val
            elif t == "R":
                status = chr(v[0])
                addr = v[1:].decode().split("\t")[0]
                self.rcpts.append((status, addr))
            elif t == "C":
                parts.append(v)
            elif t == "Z":
                self.size = int(v)
        self.content = b"".join(parts)

    def headers_and_body(self):
        head, _, body = self.content.partition(b"\r\n\r\n")
        return head + b"\r\n", body
