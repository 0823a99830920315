#ifndef SENDARIX_MAIL_ATTR_H
#define SENDARIX_MAIL_ATTR_H

/*
 * The names of the IPC attributes, one place for all of them. The wire
 * form (lib/util/attr.h) and what each attribute means are in
 * docs/ipc.md, grouped the same way: a name used by several protocols is
 * defined once, in the first group that uses it. Programs write
 * attr_puts(sb, MAIL_ATTR_QUEUE_ID, id), never the literal, so that a
 * typo is a compile error and not a silent protocol mismatch.
 */

/* Replies of every service (docs/ipc.md, each service's reply). */
#define MAIL_ATTR_STATUS	"status"	/* 0, 4 or 5 */
#define MAIL_ATTR_REASON	"reason"	/* "4.3.0 text" on failure */
#define MAIL_ATTR_QUEUE_ID	"queue_id"

/* Message content, a list of these (cleanup, maildrop files). */
#define MAIL_ATTR_DATA		"data"		/* at most 64 KiB each */

/* cleanup envelope (docs/ipc.md "cleanup"). */
#define MAIL_ATTR_SENDER	"sender"	/* empty for <> */
#define MAIL_ATTR_RCPT		"rcpt"
#define MAIL_ATTR_CLIENT_ADDR	"client_addr"
#define MAIL_ATTR_CLIENT_NAME	"client_name"
#define MAIL_ATTR_HELO		"helo"
#define MAIL_ATTR_PROTOCOL	"protocol"
#define MAIL_ATTR_TLS		"tls"		/* "TLSv1.3 with cipher ..." */
#define MAIL_ATTR_BODY		"body"		/* 7BIT or 8BITMIME */
#define MAIL_ATTR_SMTPUTF8	"smtputf8"	/* "1" */
#define MAIL_ATTR_SIZE		"size"		/* SIZE= of MAIL FROM */
#define MAIL_ATTR_RET		"ret"		/* DSN RET= */
#define MAIL_ATTR_ENVID		"envid"		/* DSN ENVID=, decoded */
#define MAIL_ATTR_NOTIFY	"notify"	/* DSN NOTIFY= of a rcpt */
#define MAIL_ATTR_ORCPT		"orcpt"		/* DSN ORCPT= of a rcpt */
#define MAIL_ATTR_LOCAL_UID	"local_uid"	/* pickup only */
#define MAIL_ATTR_FULL_NAME	"full_name"	/* sendmail -F */
#define MAIL_ATTR_SASL_METHOD	"sasl_method"	/* smtpd AUTH mechanism */
#define MAIL_ATTR_SASL_USERNAME	"sasl_username"	/* smtpd AUTH user */

/* cleanup content trailer (docs/ipc.md "cleanup", step 3). */
#define MAIL_ATTR_HOLD		"hold"		/* the HOLD reason */
#define MAIL_ATTR_DISCARD	"discard"	/* the DISCARD reason */

/* Queue file A records cleanup adds (lib/global/qfile.h). */
#define MAIL_ATTR_UID		"uid"
#define MAIL_ATTR_LOGIN		"login"

/* Maildrop files (docs/ipc.md "Maildrop files"). */
#define MAIL_ATTR_VERSION	"version"	/* the first attribute */

/* qmgr -> smtp-out delivery request (docs/ipc.md "smtp"). */
#define MAIL_ATTR_QUEUE_FILE	"queue_file"	/* active/ID */
#define MAIL_ATTR_NEXTHOP	"nexthop"
#define MAIL_ATTR_OFFSET	"offset"	/* of a rcpt's status byte */
#define MAIL_ATTR_ARRIVAL	"arrival"
#define MAIL_ATTR_ACTIVE	"active"

/* smtp-out -> qmgr reply, per recipient after "count". */
#define MAIL_ATTR_COUNT		"count"
#define MAIL_ATTR_DSN		"dsn"		/* "5.1.1" */
#define MAIL_ATTR_RELAY		"relay"		/* host[addr]:port or none */
#define MAIL_ATTR_REPLY		"reply"		/* the remote text */

/* qmgr -> bounce request (docs/ipc.md "bounce"). */
#define MAIL_ATTR_TYPE		"type"		/* failure, delay, ... */
#define MAIL_ATTR_ACTION	"action"	/* relayed, delivered */

#endif
