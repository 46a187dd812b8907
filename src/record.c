/* The record policy shared by both relay paths: see record.h. The outcomes follow OpenSSL
 * 3.0's record layer (ssl/record/rec_layer_s3.c, ssl3_record.c) as measured through the
 * userspace path, which is the reference. */
#include "tlsplice/record.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/ssl.h>

#define ALERT_WARNING 1
#define ALERT_FATAL 2
#define AD_CLOSE_NOTIFY 0
#define AD_UNEXPECTED_MESSAGE 10
#define AD_BAD_RECORD_MAC 20
#define AD_RECORD_OVERFLOW 22
#define AD_HANDSHAKE_FAILURE 40
#define AD_ILLEGAL_PARAMETER 47
#define AD_DECODE_ERROR 50
#define AD_USER_CANCELED 90
#define AD_NO_RENEGOTIATION 100
#define HS_CLIENT_HELLO 1
#define HS_KEY_UPDATE 24
#define PLAIN_MAX 16384

static void verdict(struct record_verdict *v, enum record_action a, int alert)
{
	v->action = a;
	v->alert = alert;
	v->text[0] = '\0';
}

static void fatal(struct record_verdict *v, int alert, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fatal(struct record_verdict *v, int alert, const char *fmt, ...)
{
	va_list ap;
	verdict(v, RECORD_FATAL, alert);
	va_start(ap, fmt);
	vsnprintf(v->text, sizeof(v->text), fmt, ap);
	va_end(ap);
}

static void alert_text(struct record_verdict *v, int level, int desc, int send)
{
	fatal(v, send, "alert from client (level %d, description %d)", level, desc);
}

/* A warning the record layer lets pass: counted, the RECORD_MAX_WARN-th in a row is fatal. */
static void tolerated(struct record_state *st, struct record_verdict *v)
{
	if (++st->warn >= RECORD_MAX_WARN)
		fatal(v, AD_UNEXPECTED_MESSAGE, "too many warning alerts");
	else
		verdict(v, RECORD_IGNORE, -1);
}

static void classify_alert(unsigned version, const uint8_t *buf, size_t len,
			   struct record_state *st, struct record_verdict *v)
{
	bool tls13 = version == RECORD_TLS13;
	if (len != 2) {
		fatal(v, AD_DECODE_ERROR, "bad alert record");
		return;
	}
	int level = buf[0], desc = buf[1];
	if (level != ALERT_WARNING && level != ALERT_FATAL) {
		fatal(v, AD_ILLEGAL_PARAMETER, "bad alert record");
		return;
	}
	if (desc == AD_CLOSE_NOTIFY && (tls13 || level == ALERT_WARNING))
		verdict(v, RECORD_CLOSE_NOTIFY, -1);
	else if (tls13 && desc == AD_USER_CANCELED)
		tolerated(st, v); /* the one other warning TLS 1.3 has, at any level */
	else if (level == ALERT_FATAL || tls13)
		alert_text(v, level, desc, -1); /* the client's own end: nothing to answer */
	else if (desc == AD_NO_RENEGOTIATION)
		alert_text(v, level, desc, AD_HANDSHAKE_FAILURE);
	else
		tolerated(st, v);
}

static void classify_handshake(unsigned version, const uint8_t *buf, size_t len,
			       struct record_verdict *v)
{
	if (len == 0) {
		fatal(v, AD_UNEXPECTED_MESSAGE, "unexpected handshake message");
	} else if (version == RECORD_TLS13 && buf[0] == HS_KEY_UPDATE) {
		if (len != 5 || buf[1] != 0 || buf[2] != 0 || buf[3] != 1)
			fatal(v, AD_DECODE_ERROR, "bad KeyUpdate");
		else if (buf[4] > 1)
			fatal(v, AD_ILLEGAL_PARAMETER, "bad KeyUpdate");
		else
			verdict(v, RECORD_KEY_UPDATE, -1);
	} else if (version != RECORD_TLS13 && buf[0] == HS_CLIENT_HELLO && len >= 4) {
		/* OpenSSL 3.0 refuses client renegotiation with a warning, and goes on */
		verdict(v, RECORD_WARN, AD_NO_RENEGOTIATION);
	} else {
		fatal(v, AD_UNEXPECTED_MESSAGE, "unexpected handshake message");
	}
}

void record_classify(unsigned version, unsigned type, const uint8_t *buf, size_t len,
		     struct record_state *st, struct record_verdict *v)
{
	if (len > PLAIN_MAX) {
		fatal(v, AD_RECORD_OVERFLOW, "record too long");
		return;
	}
	/* empty records of any type are counted, as OpenSSL counts them */
	if (len == 0 && ++st->empty > RECORD_MAX_EMPTY) {
		fatal(v, AD_UNEXPECTED_MESSAGE, "too many empty records");
		return;
	}
	if (len > 0)
		st->empty = 0;
	if (type != RECORD_ALERT)
		st->warn = 0;
	switch (type) {
	case RECORD_DATA:
		verdict(v, RECORD_RELAY, -1); /* an empty one is nothing, never the end */
		break;
	case RECORD_ALERT:
		classify_alert(version, buf, len, st, v);
		break;
	case RECORD_HANDSHAKE:
		classify_handshake(version, buf, len, v);
		break;
	default: /* ChangeCipherSpec after the handshake, heartbeat, unknown types; no type in
		  * the text: OpenSSL does not tell the userspace path the inner type of TLS 1.3 */
		fatal(v, AD_UNEXPECTED_MESSAGE, "unexpected record");
	}
}

void record_from_errno(int err, struct record_verdict *v)
{
	switch (err) {
	case EBADMSG:
		fatal(v, AD_BAD_RECORD_MAC, "record failed to decrypt");
		break;
	case EMSGSIZE:
		fatal(v, AD_RECORD_OVERFLOW, "record too long");
		break;
#ifdef EKEYEXPIRED
	case EKEYEXPIRED: /* 6.14+: a KeyUpdate arrived and the kernel waits for new keys */
		verdict(v, RECORD_KEY_UPDATE, -1);
		break;
#endif
	default:
		fatal(v, -1, "%s", strerror(err));
	}
}

static void unexpected_record(struct record_verdict *v)
{
	fatal(v, AD_UNEXPECTED_MESSAGE, "unexpected record");
}

bool record_from_openssl(int reason, int last_type, int alert_level, int alert,
			 struct record_verdict *v)
{
	if (reason > SSL_AD_REASON_OFFSET && reason <= SSL_AD_REASON_OFFSET + 255) {
		int desc = reason - SSL_AD_REASON_OFFSET;
		alert_text(v, desc == alert && alert_level > 0 ? alert_level : ALERT_FATAL, desc,
			   -1);
		return true;
	}
	switch (reason) {
	case SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC:
		fatal(v, AD_BAD_RECORD_MAC, "record failed to decrypt");
		return true;
	case SSL_R_DATA_LENGTH_TOO_LONG:
	case SSL_R_ENCRYPTED_LENGTH_TOO_LONG:
	case SSL_R_PACKET_LENGTH_TOO_LONG:
		fatal(v, AD_RECORD_OVERFLOW, "record too long");
		return true;
	case SSL_R_UNEXPECTED_MESSAGE:
		if (last_type >= 0 && last_type != RECORD_HANDSHAKE)
			unexpected_record(v);
		else
			fatal(v, AD_UNEXPECTED_MESSAGE, "unexpected handshake message");
		return true;
	case SSL_R_UNEXPECTED_RECORD:
	case SSL_R_BAD_RECORD_TYPE:
	case SSL_R_CCS_RECEIVED_EARLY:
		unexpected_record(v);
		return true;
	case SSL_R_TOO_MANY_WARN_ALERTS:
		fatal(v, AD_UNEXPECTED_MESSAGE, "too many warning alerts");
		return true;
	case SSL_R_RECORD_TOO_SMALL:
		fatal(v, AD_UNEXPECTED_MESSAGE, "too many empty records");
		return true;
	case SSL_R_BAD_KEY_UPDATE:
		fatal(v, AD_DECODE_ERROR, "bad KeyUpdate");
		return true;
	case SSL_R_INVALID_ALERT:
	case SSL_R_UNKNOWN_ALERT_TYPE:
		fatal(v, AD_DECODE_ERROR, "bad alert record");
		return true;
	case SSL_R_NO_RENEGOTIATION:
		alert_text(v, ALERT_WARNING, AD_NO_RENEGOTIATION, AD_HANDSHAKE_FAILURE);
		return true;
	default:
		return false;
	}
}
