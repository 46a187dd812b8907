/* The TLVs of a PROXY v2 header sent to a backend (ALPN, authority, SSL) and its optional
 * CRC32c: pure functions over a caller's buffer, callable from any thread. */
#ifndef TLSPLICE_PROXY_TLV_H
#define TLSPLICE_PROXY_TLV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The TLVs a frontend sends (proxy_protocol_tlvs), a bit set. */
#define PROXY_TLV_ALPN 1u
#define PROXY_TLV_AUTHORITY 2u
#define PROXY_TLV_SSL 4u

/* The room a v2 header with every TLV may need: 16 + 36 address bytes, ALPN and authority
 * (255 bytes each at most), SSL with version, cipher and a CN cut at 255 bytes, CRC32c. */
#define PROXY_TLV_HEADER_MAX 1536u

/* What the TLVs say of a connection; NULL or 0-length fields are left out. */
struct proxy_tlv_facts {
	const unsigned char *alpn;
	size_t alpn_len;
	const char *authority; /* the client's SNI */
	const char *version;   /* "TLSv1.3" */
	const char *cipher;
	const char *cn;    /* the client certificate's subject CN */
	bool cert;         /* the client presented a certificate */
	bool cert_in_conn; /* ... on this connection, not only in a resumed session */
	long verify;       /* X509 verify result of that certificate (0: verified) */
};

/* Appends the TLVs of mask (and with crc a CRC32c TLV) to the v2 header of len bytes in hdr
 * (cap bytes of room), and fixes its length field and checksum. The header's new length, or 0
 * if it would not fit (the caller then sends none). */
size_t proxy_tlv_append(unsigned char *hdr, size_t len, size_t cap, unsigned mask, bool crc,
			const struct proxy_tlv_facts *f);
/* CRC32c (Castagnoli, as iSCSI and the PROXY protocol use it) of len bytes. */
uint32_t proxy_tlv_crc32c(const unsigned char *buf, size_t len);

#endif
