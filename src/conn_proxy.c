/* What a backend is told of the client in the PROXY header (conn.h): its addresses, and with
 * proxy_protocol_tlvs what the handshake said, from the connection's own thread. */
#include "tlsplice/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tlsplice/proxy_tlv.h"
#include "tlsplice/runtime.h"

/* Builds the PROXY protocol header (v1 text or v2 binary) for this client; 0 if off. */
static size_t proxy_header(const struct conn *c, enum proxy_proto v, unsigned char *out, size_t cap)
{
	static const unsigned char sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
					       0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);
	if (v == PROXY_OFF)
		return 0;
	if (c->pin && c->pin->dst) /* the address the client reached, as the front told it */
		local = *c->pin->dst;
	else if (getsockname(c->cfd, (struct sockaddr *)&local, &llen) < 0)
		return 0;
	bool v6 = c->peer.ss_family == AF_INET6;
	const struct sockaddr_in *s4 = (const void *)&c->peer, *d4 = (const void *)&local;
	const struct sockaddr_in6 *s6 = (const void *)&c->peer, *d6 = (const void *)&local;
	if (v == PROXY_V1) {
		char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
		inet_ntop(c->peer.ss_family,
			  v6 ? (const void *)&s6->sin6_addr : (const void *)&s4->sin_addr, src,
			  sizeof(src));
		inet_ntop(c->peer.ss_family,
			  v6 ? (const void *)&d6->sin6_addr : (const void *)&d4->sin_addr, dst,
			  sizeof(dst));
		int n = snprintf((char *)out, cap, "PROXY %s %s %s %u %u\r\n", v6 ? "TCP6" : "TCP4",
				 src, dst, ntohs(v6 ? s6->sin6_port : s4->sin_port),
				 ntohs(v6 ? d6->sin6_port : d4->sin_port));
		return n > 0 && (size_t)n < cap ? (size_t)n : 0;
	}
	size_t alen = v6 ? 36 : 12;
	memcpy(out, sig, sizeof(sig));
	out[12] = 0x21;             /* version 2, PROXY command */
	out[13] = v6 ? 0x21 : 0x11; /* TCP over IPv6 / IPv4 */
	out[14] = (unsigned char)(alen >> 8);
	out[15] = (unsigned char)alen;
	unsigned char *p = out + 16;
	if (v6) {
		memcpy(p, &s6->sin6_addr, 16);
		memcpy(p + 16, &d6->sin6_addr, 16);
		memcpy(p + 32, &s6->sin6_port, 2);
		memcpy(p + 34, &d6->sin6_port, 2);
	} else {
		memcpy(p, &s4->sin_addr, 4);
		memcpy(p + 4, &d4->sin_addr, 4);
		memcpy(p + 8, &s4->sin_port, 2);
		memcpy(p + 10, &d4->sin_port, 2);
	}
	return 16 + alen;
}

/* What the SSL TLV tells of a client certificate, kept while the SSL object lives. */
struct conn_peer_cert {
	long verify;
	bool in_conn;
	char cn[256];
};

void conn_keep_peer_cert(struct conn *c)
{
	X509 *x = SSL_get0_peer_certificate(c->ssl);
	if (!x || !(c->peer_cert = calloc(1, sizeof(*c->peer_cert))))
		return;
	c->peer_cert->verify = SSL_get_verify_result(c->ssl);
	c->peer_cert->in_conn = !SSL_session_reused(c->ssl);
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, c->peer_cert->cn,
				      sizeof(c->peer_cert->cn)) < 0)
		c->peer_cert->cn[0] = '\0';
}

/* proxy_protocol_tlvs and proxy_protocol_crc32c on a v2 header of n bytes: its new length
 * (the header without them if they cannot fit, which the bounds rule out). */
static size_t proxy_tlvs_add(const struct conn *c, const struct cfg_frontend *fe,
			     unsigned char *hdr, size_t n, size_t cap)
{
	const struct conn_peer_cert *pc = c->peer_cert;
	struct proxy_tlv_facts f = {
		.alpn = c->alpn,
		.alpn_len = c->alpn_len,
		.authority = c->sni,
		.version = c->tls_version,
		.cipher = c->cipher,
		.cn = pc ? pc->cn : NULL,
		.cert = pc != NULL,
		.cert_in_conn = pc && pc->in_conn,
		.verify = pc ? pc->verify : 0,
	};
	size_t m = proxy_tlv_append(hdr, n, cap, fe->proxy_tlvs, fe->proxy_crc32c, &f);
	return m ? m : n;
}

/* The connect just completed, so the socket's send buffer is empty and the header (at most
 * 1536 bytes with every TLV) goes out whole in one send. */
int conn_send_proxy_header(struct conn *c)
{
	const struct cfg_frontend *fe = conn_fe(c);
	unsigned char hdr[PROXY_TLV_HEADER_MAX];
	size_t n = proxy_header(c, fe->proxy_protocol, hdr, sizeof(hdr));
	if (n && fe->proxy_protocol == PROXY_V2 && (fe->proxy_tlvs || fe->proxy_crc32c))
		n = proxy_tlvs_add(c, fe, hdr, n, sizeof(hdr));
	if (n == 0)
		return 0;
	if (send(c->bfd, hdr, n, MSG_NOSIGNAL) != (ssize_t)n) {
		conn_fail(c, CLOSE_SERVER_EOF, "cannot send PROXY header: %s", strerror(errno));
		return -1;
	}
	return 0;
}
