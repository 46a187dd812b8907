/* The record policy: what becomes of each TLS record a client sends once the handshake is
 * done, decided once for both relay paths. The userspace path gets OpenSSL's verdict and
 * maps it here; the kernel path reads records with recvmsg and classifies them here; both
 * then act alike and log the same words. Pure functions: no socket, no connection.
 *
 *   record                              outcome (both paths)
 *   application data, empty or not      relayed (an empty one is nothing: never EOF)
 *   32 empty records in a row           fatal unexpected_message "too many empty records"
 *   alert close_notify                  end of the client's stream
 *   warning alert (TLS 1.2)             ignored; the 5th in a row is fatal
 *   user_canceled (TLS 1.3)             ignored; the 5th in a row is fatal
 *   any other alert                     connection closed, no alert back
 *   KeyUpdate (TLS 1.3)                 re-key (userspace; kernel that takes a second key)
 *                                       / close "key_update" (a kernel that cannot re-key)
 *   ClientHello (TLS 1.2 renegotiation) warning no_renegotiation back, ignored
 *   any other handshake message         fatal unexpected_message
 *   record too long                     fatal record_overflow
 *   record that fails to decrypt        fatal bad_record_mac
 *   any other record type               fatal unexpected_message
 */
#ifndef TLSPLICE_RECORD_H
#define TLSPLICE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RECORD_CCS 20
#define RECORD_ALERT 21
#define RECORD_HANDSHAKE 22
#define RECORD_DATA 23

#define RECORD_TLS12 0x0303
#define RECORD_TLS13 0x0304

#define RECORD_MAX_EMPTY 32 /* empty records in a row OpenSSL takes */
#define RECORD_MAX_WARN 5   /* warning alerts in a row OpenSSL takes (the 5th is fatal) */

enum record_action {
	RECORD_RELAY,        /* application data (possibly none) */
	RECORD_IGNORE,       /* nothing to relay; go on */
	RECORD_WARN,         /* send warning alert `alert` to the client; go on */
	RECORD_CLOSE_NOTIFY, /* the client's stream ends */
	RECORD_KEY_UPDATE,   /* TLS 1.3 KeyUpdate */
	RECORD_FATAL,        /* close; send fatal alert `alert` unless it is -1 */
};

struct record_verdict {
	enum record_action action;
	int alert;     /* alert description for RECORD_WARN / RECORD_FATAL; -1: none */
	char text[64]; /* RECORD_FATAL: the access log's error text */
};

/* What the policy remembers between records of one connection (zero-initialised). */
struct record_state {
	unsigned empty; /* empty data records in a row */
	unsigned warn;  /* ignored warning alerts in a row */
};

/* Classifies one decrypted record: version RECORD_TLS12 or RECORD_TLS13, its content type
 * and plaintext buf[0..len). */
void record_classify(unsigned version, unsigned type, const uint8_t *buf, size_t len,
		     struct record_state *st, struct record_verdict *v);

/* A record the kernel refused to hand over: recvmsg's errno. */
void record_from_errno(int err, struct record_verdict *v);

/* The userspace path: OpenSSL failed reading with reason code `reason` (ERR_GET_REASON of the
 * last error; 0: unknown). last_type is the content type of the last record it read (-1 if
 * unknown: it tells a handshake message from another record), alert_level/alert the last alert the client sent (-1 if none). Sets
 * RECORD_FATAL with the policy's text, or returns false when the reason is not a record
 * error (the caller keeps OpenSSL's own text). */
bool record_from_openssl(int reason, int last_type, int alert_level, int alert,
			 struct record_verdict *v);

#endif
