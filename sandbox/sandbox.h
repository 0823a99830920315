#ifndef SENDARIX_SANDBOX_H
#define SENDARIX_SANDBOX_H

/*
 * Private to the sandbox program (sandbox/): the actions of the sandbox's rule
 * table, parsed from a table result such as "450 4.2.1 Mailbox busy",
 * "GREYLIST 60" or "DATA 554 5.7.1 No thanks".
 */
#define SANDBOX_ACT_OK		0	/* accept */
#define SANDBOX_ACT_REPLY	1	/* answer with code and text */
#define SANDBOX_ACT_GREYLIST	2	/* 450 until secs have passed */
#define SANDBOX_ACT_DROP	3	/* close without a reply */
#define SANDBOX_ACT_STALL	4	/* wait secs, then accept */
#define SANDBOX_ACT_DATA	5	/* accept RCPT, answer DATA with code */

/* Stages a rule result can be written for. */
#define SANDBOX_STAGE_RCPT	0	/* no keyword: the recipient */
#define SANDBOX_STAGE_EHLO	1	/* "EHLO action" */
#define SANDBOX_STAGE_CONNECT	2	/* "CONNECT action" */

#define SANDBOX_TEXT_MAX	400	/* reply text, without the code */

struct sandbox_action {
	int     stage;			/* SANDBOX_STAGE_* */
	int     kind;			/* SANDBOX_ACT_* */
	int     code;			/* 400..599 for REPLY and DATA */
	long    secs;			/* GREYLIST and STALL */
	char    text[SANDBOX_TEXT_MAX + 1];	/* may be empty */
};

extern int sandbox_action_parse(const char *, struct sandbox_action *);

#endif
