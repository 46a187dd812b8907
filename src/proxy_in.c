/* The PROXY protocol header a balancer in front sends (haproxy.org's proxy-protocol.txt):
 * strict parsing, every length bounded, nothing read past the header's own bytes. */
#include "tlsplice/proxy_in.h"
#include "tlsplice/proxy_tlv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const unsigned char v2_sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
					  0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };
static const char v1_sig[6] = "PROXY ";

#define V2_LOCAL 0x0
#define V2_PROXY 0x1

static int fail(char *err, size_t errlen, const char *why)
{
	snprintf(err, errlen, "%s", why);
	return -1;
}

/* A start that is neither header: say what came, so "a TLS hello without a header" is plain. */
static int not_a_header(const unsigned char *buf, size_t len, char *err, size_t errlen)
{
	char hex[16] = "";
	for (size_t i = 0; i < len && i < 3; i++)
		snprintf(hex + strlen(hex), sizeof(hex) - strlen(hex), "%s%02x", i ? " " : "",
			 buf[i]);
	snprintf(err, errlen, "no PROXY header (first bytes %s)", hex);
	return -1;
}

/* Port text of a v1 line: 1 to 5 digits, at most 65535. */
static int v1_port(const char *s, uint16_t *out)
{
	size_t n = strlen(s);
	unsigned long v = 0;
	if (n < 1 || n > 5)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*out = htons((uint16_t)v);
	return 0;
}

static int v1_addr(int family, const char *ip, const char *port, struct sockaddr_storage *ss)
{
	uint16_t p;
	memset(ss, 0, sizeof(*ss));
	if (v1_port(port, &p) < 0)
		return -1;
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = p;
		return inet_pton(AF_INET, ip, &s4->sin_addr) == 1 ? 0 : -1;
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	s6->sin6_family = AF_INET6;
	s6->sin6_port = p;
	return inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1 ? 0 : -1;
}

/* The words of a v1 line after "PROXY ": single spaces, printable ASCII only. */
static int v1_words(char *line, char **w, int max)
{
	int n = 0;
	for (char *p = line;;) {
		if (n == max || *p == ' ' || *p == '\0')
			return -1;
		w[n++] = p;
		p = strchr(p, ' ');
		if (!p)
			return n;
		*p++ = '\0';
	}
}

static int v1_line(const unsigned char *buf, size_t eol, struct proxy_in_info *info, char *err,
		   size_t errlen)
{
	char line[PROXY_IN_V1_MAX + 1], *w[6];
	if (eol < sizeof(v1_sig) + 1 || buf[eol - 1] != '\r')
		return fail(err, errlen, "bad PROXY v1 header (no CRLF)");
	size_t n = eol - 1 - sizeof(v1_sig);
	for (size_t i = 0; i < n; i++)
		if (buf[sizeof(v1_sig) + i] < 0x20 || buf[sizeof(v1_sig) + i] > 0x7e)
			return fail(err, errlen, "bad PROXY v1 header (control byte)");
	memcpy(line, buf + sizeof(v1_sig), n);
	line[n] = '\0';
	if (strncmp(line, "UNKNOWN", 7) == 0 && (line[7] == '\0' || line[7] == ' ')) {
		info->has_addr = false;
		return (int)eol + 1;
	}
	int family = strncmp(line, "TCP4 ", 5) == 0   ? AF_INET
		     : strncmp(line, "TCP6 ", 5) == 0 ? AF_INET6
						      : 0;
	int nw = v1_words(line, w, 6);
	if (family == 0)
		return fail(err, errlen, "bad PROXY v1 header (protocol not TCP4, TCP6, UNKNOWN)");
	if (nw != 5 || v1_addr(family, w[1], w[3], &info->src) < 0 ||
	    v1_addr(family, w[2], w[4], &info->dst) < 0)
		return fail(err, errlen, "bad PROXY v1 header (addresses)");
	info->has_addr = true;
	return (int)eol + 1;
}

static int parse_v1(const unsigned char *buf, size_t len, struct proxy_in_info *info, char *err,
		    size_t errlen)
{
	size_t n = len < sizeof(v1_sig) ? len : sizeof(v1_sig);
	if (memcmp(buf, v1_sig, n) != 0)
		return not_a_header(buf, len, err, errlen);
	info->version = 1;
	size_t scan = len < PROXY_IN_V1_MAX ? len : PROXY_IN_V1_MAX;
	const unsigned char *nl = memchr(buf, '\n', scan);
	if (nl)
		return v1_line(buf, (size_t)(nl - buf), info, err, errlen);
	if (len >= PROXY_IN_V1_MAX)
		return fail(err, errlen, "oversized PROXY v1 header (no CRLF in 107 bytes)");
	return 0;
}

/* A CRC32c TLV (at sum, in the header hdr of len bytes) must match the header's checksum
 * computed with that field zero. */
static bool v2_crc_ok(const unsigned char *hdr, size_t len, const unsigned char *sum)
{
	unsigned char copy[PROXY_IN_MAX];
	memcpy(copy, hdr, len);
	memset(copy + (sum - hdr), 0, 4);
	uint32_t c = proxy_tlv_crc32c(copy, len);
	return sum[0] == (c >> 24) && sum[1] == ((c >> 16) & 0xff) && sum[2] == ((c >> 8) & 0xff) &&
	       sum[3] == (c & 0xff);
}

/* The TLVs after the addresses (n bytes at p, ending the header hdr of len bytes) must tile
 * the rest of the header exactly; a CRC32c among them must match. */
static int v2_tlvs_ok(const unsigned char *hdr, size_t len, const unsigned char *p, size_t n,
		      char *err, size_t errlen)
{
	while (n > 0) {
		if (n < 3)
			return fail(err, errlen, "bad PROXY v2 header (malformed TLV)");
		size_t l = 3u + (((size_t)p[1] << 8) | p[2]);
		if (l > n)
			return fail(err, errlen, "bad PROXY v2 header (malformed TLV)");
		if (p[0] == 0x03 && (l != 7 || !v2_crc_ok(hdr, len, p + 3)))
			return fail(err, errlen, "bad PROXY v2 header (CRC32c mismatch)");
		p += l;
		n -= l;
	}
	return 0;
}

static void v2_inet(const unsigned char *a, struct proxy_in_info *info)
{
	struct sockaddr_in *s = (struct sockaddr_in *)&info->src;
	struct sockaddr_in *d = (struct sockaddr_in *)&info->dst;
	s->sin_family = d->sin_family = AF_INET;
	memcpy(&s->sin_addr, a, 4);
	memcpy(&d->sin_addr, a + 4, 4);
	memcpy(&s->sin_port, a + 8, 2);
	memcpy(&d->sin_port, a + 10, 2);
}

static void v2_inet6(const unsigned char *a, struct proxy_in_info *info)
{
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)&info->src;
	struct sockaddr_in6 *d = (struct sockaddr_in6 *)&info->dst;
	s->sin6_family = d->sin6_family = AF_INET6;
	memcpy(&s->sin6_addr, a, 16);
	memcpy(&d->sin6_addr, a + 16, 16);
	memcpy(&s->sin6_port, a + 32, 2);
	memcpy(&d->sin6_port, a + 34, 2);
}

/* The address block of a complete v2 PROXY header of body length blen. */
static int v2_addresses(const unsigned char *buf, size_t blen, struct proxy_in_info *info,
			char *err, size_t errlen)
{
	size_t alen;
	switch (buf[13]) {
	case 0x11: /* TCP over IPv4 */
		alen = 12;
		break;
	case 0x21: /* TCP over IPv6 */
		alen = 36;
		break;
	case 0x00: /* UNSPEC */
		alen = 0;
		break;
	case 0x31: /* a Unix stream socket: no address to take */
		alen = 216;
		break;
	default:
		return fail(err, errlen, "bad PROXY v2 header (not a TCP or Unix stream)");
	}
	if (blen < alen)
		return fail(err, errlen, "bad PROXY v2 header (address block too short)");
	if (v2_tlvs_ok(buf, 16 + blen, buf + 16 + alen, blen - alen, err, errlen) < 0)
		return -1;
	info->has_addr = buf[13] == 0x11 || buf[13] == 0x21;
	if (buf[13] == 0x11)
		v2_inet(buf + 16, info);
	else if (buf[13] == 0x21)
		v2_inet6(buf + 16, info);
	return 0;
}

static int parse_v2(const unsigned char *buf, size_t len, struct proxy_in_info *info, char *err,
		    size_t errlen)
{
	size_t n = len < sizeof(v2_sig) ? len : sizeof(v2_sig);
	if (memcmp(buf, v2_sig, n) != 0)
		return not_a_header(buf, len, err, errlen);
	info->version = 2;
	if (len < 16)
		return 0;
	if ((buf[12] >> 4) != 2)
		return fail(err, errlen, "bad PROXY v2 header (version)");
	unsigned cmd = buf[12] & 0x0f;
	if (cmd != V2_LOCAL && cmd != V2_PROXY)
		return fail(err, errlen, "bad PROXY v2 header (command)");
	size_t blen = ((size_t)buf[14] << 8) | buf[15];
	if (16 + blen > PROXY_IN_MAX)
		return fail(err, errlen, "oversized PROXY v2 header");
	if (len < 16 + blen)
		return 0;
	if (cmd == V2_LOCAL) {
		info->local = true;
		info->has_addr = false;
		return (int)(16 + blen);
	}
	if (v2_addresses(buf, blen, info, err, errlen) < 0)
		return -1;
	return (int)(16 + blen);
}

int proxy_in_parse(const unsigned char *buf, size_t len, unsigned versions,
		   struct proxy_in_info *info, char *err, size_t errlen)
{
	memset(info, 0, sizeof(*info));
	if (len == 0)
		return 0;
	if (buf[0] == v1_sig[0]) {
		if (!(versions & PROXY_IN_V1))
			return fail(err, errlen, "PROXY v1 header where only v2 is accepted");
		return parse_v1(buf, len, info, err, errlen);
	}
	if (buf[0] == v2_sig[0]) {
		if (!(versions & PROXY_IN_V2))
			return fail(err, errlen, "PROXY v2 header where only v1 is accepted");
		return parse_v2(buf, len, info, err, errlen);
	}
	return not_a_header(buf, len, err, errlen);
}

int proxy_in_cidr_parse(const char *s, struct proxy_in_cidr *out, char *err, size_t errlen)
{
	char ip[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	memset(out, 0, sizeof(*out));
	if (n == 0 || n >= sizeof(ip))
		goto bad;
	memcpy(ip, s, n);
	ip[n] = '\0';
	out->family = strchr(ip, ':') ? AF_INET6 : AF_INET;
	int max = out->family == AF_INET ? 32 : 128;
	if (inet_pton(out->family, ip, out->addr) != 1)
		goto bad;
	out->bits = max;
	if (slash) {
		const char *b = slash + 1;
		size_t bl = strlen(b);
		if (bl < 1 || bl > 3 || strspn(b, "0123456789") != bl || atoi(b) > max)
			goto bad;
		out->bits = atoi(b);
	}
	for (int i = out->bits; i < max; i++)
		if (out->addr[i / 8] & (0x80 >> (i % 8))) {
			snprintf(err, errlen,
				 "'%s' has host bits set (a network is e.g. 10.0.0.0/8)", s);
			return -1;
		}
	return 0;
bad:
	snprintf(err, errlen, "bad network '%s' (ADDRESS[/BITS], e.g. 10.0.0.0/8 or ::1)", s);
	return -1;
}

static bool prefix_match(const unsigned char *a, const unsigned char *net, int bits)
{
	int full = bits / 8, rest = bits % 8;
	if (memcmp(a, net, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (net[full] & mask);
}

bool proxy_in_peer_allowed(const struct proxy_in_cidr *nets, size_t n,
			   const struct sockaddr_storage *peer)
{
	const unsigned char *a;
	int family = peer->ss_family;
	if (family == AF_INET) {
		a = (const unsigned char *)&((const struct sockaddr_in *)peer)->sin_addr;
	} else if (family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)peer)->sin6_addr;
		a = a6->s6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			family = AF_INET;
			a += 12;
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < n; i++)
		if (nets[i].family == family && prefix_match(a, nets[i].addr, nets[i].bits))
			return true;
	return false;
}

void proxy_in_reader_finish(struct proxy_in_reader *r)
{
	free(r->buf);
	free(r->dst);
	memset(r, 0, sizeof(*r));
}

/* A whole header: what it says of the client replaces what the socket says. */
static enum proxy_in_res reader_done(struct proxy_in_reader *r, const struct proxy_in_info *in,
				     struct sockaddr_storage *peer, char *err, size_t errlen)
{
	free(r->buf);
	r->buf = NULL;
	r->len = 0;
	if (!in->has_addr) /* v2 LOCAL (the balancer's own check), UNKNOWN: keep the socket's */
		return PROXY_IN_DONE;
	r->dst = malloc(sizeof(*r->dst));
	if (!r->dst) {
		fail(err, errlen, "out of memory");
		return PROXY_IN_LOCAL;
	}
	*r->dst = in->dst;
	*peer = in->src;
	return PROXY_IN_DONE;
}

enum proxy_in_res proxy_in_read(struct proxy_in_reader *r, int fd, unsigned versions,
				struct sockaddr_storage *peer, char *err, size_t errlen)
{
	unsigned char buf[PROXY_IN_MAX];
	struct proxy_in_info info;
	size_t have = r->len;
	if (have)
		memcpy(buf, r->buf, have);
	ssize_t n = recv(fd, buf + have, sizeof(buf) - have, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return PROXY_IN_AGAIN;
	if (n <= 0) {
		snprintf(err, errlen, "connection %s before the PROXY header ended",
			 n == 0 ? "closed" : strerror(errno));
		return PROXY_IN_BAD;
	}
	int h = proxy_in_parse(buf, have + (size_t)n, versions, &info, err, errlen);
	if (h < 0)
		return PROXY_IN_BAD;
	/* not whole yet: every byte so far is header, so all are taken */
	size_t take = h == 0 ? (size_t)n : (size_t)h - have;
	if (recv(fd, buf + have, take, 0) != (ssize_t)take) {
		fail(err, errlen, "cannot read the PROXY header");
		return PROXY_IN_BAD;
	}
	if (h > 0)
		return reader_done(r, &info, peer, err, errlen);
	if (!r->buf && !(r->buf = malloc(PROXY_IN_MAX))) {
		fail(err, errlen, "out of memory");
		return PROXY_IN_LOCAL;
	}
	memcpy(r->buf, buf, have + take);
	r->len = have + take;
	return PROXY_IN_AGAIN;
}
