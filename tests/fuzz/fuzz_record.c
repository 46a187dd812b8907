/* libFuzzer target for the record policy (record.h): the classifier every record from a
 * client goes through once the handshake is done, on both relay paths.
 *
 * Input: a sequence of records, each as [flags][type][len_hi][len_lo][payload...] (the length
 * is cut to what is left); flags bit 0 picks TLS 1.3. One record_state runs across the
 * sequence, as on a connection. The last two bytes also drive the errno and OpenSSL-reason
 * mappings. Invariants: a verdict is always one of the actions, a fatal one has a text and
 * an alert in range, nothing reads past the record. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlsplice/record.h"

static void check(const struct record_verdict *v)
{
	if (v->action > RECORD_FATAL || v->alert < -1 || v->alert > 255)
		abort();
	if (v->action == RECORD_FATAL &&
	    (v->text[0] == '\0' || memchr(v->text, '\0', sizeof(v->text)) == NULL))
		abort();
	if (v->action == RECORD_WARN && v->alert < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct record_state st = { 0 };
	struct record_verdict v;
	size_t off = 0;

	while (size - off >= 4) {
		unsigned version = data[off] & 1 ? RECORD_TLS13 : RECORD_TLS12;
		unsigned type = data[off + 1];
		size_t len = (size_t)data[off + 2] << 8 | data[off + 3];
		off += 4;
		if (len > size - off)
			len = size - off;
		/* a copy of exactly len bytes: a read past it is caught by the sanitizer */
		uint8_t *rec = malloc(len ? len : 1);
		if (!rec)
			return 0;
		memcpy(rec, data + off, len);
		record_classify(version, type, rec, len, &st, &v);
		free(rec);
		check(&v);
		off += len;
		if (v.action == RECORD_FATAL || v.action == RECORD_CLOSE_NOTIFY)
			break; /* the connection ends here */
	}
	if (size >= 2) {
		record_from_errno(data[size - 1], &v);
		check(&v);
		int reason = data[size - 2] << 4 | data[size - 1];
		if (record_from_openssl(reason, (int8_t)data[0], data[size - 2] % 3 - 1,
					(int8_t)data[size - 1], &v))
			check(&v);
	}
	return 0;
}
