#ifndef SENDARIX_SUBMIT_ACL_H
#define SENDARIX_SUBMIT_ACL_H

struct strbuf;

/*
 * Who may submit mail locally, and with which envelope senders:
 * authorized_submit_users and local_login_sender_maps (Postfix names and
 * meanings). The checks answer 1 (allowed), 0 (refused) or -1 (a table
 * failed: try again later).
 */
struct submit_acl;

extern struct submit_acl *submit_acl_new(const char *, const char *,
					         const char *, struct strbuf *);
extern int submit_acl_user(struct submit_acl *, const char *);
extern int submit_acl_sender(struct submit_acl *, const char *,
			             const char *);
extern struct submit_acl *submit_acl_free(struct submit_acl *);

#endif
