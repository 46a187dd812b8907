/* The PROXY protocol header a trusted balancer in front sends before the TLS handshake
 * (v1 text, v2 binary): a pure parser over bytes, the peer filter of accept_proxy_from, and
 * the reading of a header off a connection's socket. The parser and the filter have no state
 * and may be called from any thread; a reader belongs to its connection's thread. */
#ifndef TLSPLICE_PROXY_IN_H
#define TLSPLICE_PROXY_IN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Which versions a frontend takes (a bit set, as config.h's ACCEPT_PROXY_* values). */
#define PROXY_IN_V1 1u
#define PROXY_IN_V2 2u

/* The largest header taken: a v1 line is at most 107 bytes; a v2 header is 16 bytes plus
 * its addresses and TLVs, and anything longer than this is refused as oversized. */
#define PROXY_IN_MAX 1024u
#define PROXY_IN_V1_MAX 107u

/* What a complete header says. has_addr is false for v2 LOCAL (a balancer's own health
 * check), v1 UNKNOWN and v2 families other than TCP over IPv4/IPv6: the connection then
 * keeps the socket's own addresses. */
struct proxy_in_info {
	bool has_addr;
	bool local; /* v2 LOCAL */
	int version;
	struct sockaddr_storage src, dst;
};

/* Parses the start of a connection's bytes (len of them so far). Returns the header's length
 * (> 0) when buf holds it whole, with info filled; 0 when buf is a valid start of a header
 * that would still fit in PROXY_IN_MAX (every byte given is then part of the header, so a
 * caller may consume them all); -1 with the reason in err when it is not a header of an
 * allowed version, is malformed or is oversized. */
int proxy_in_parse(const unsigned char *buf, size_t len, unsigned versions,
		   struct proxy_in_info *info, char *err, size_t errlen);

/* One network of accept_proxy_from. */
struct proxy_in_cidr {
	int family; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	int bits;
};

/* Parses "10.0.0.0/8" or "::1" (a bare address is a /32 or /128) into out; host bits beyond
 * the prefix must be zero. 0, or -1 with the reason in err. */
int proxy_in_cidr_parse(const char *s, struct proxy_in_cidr *out, char *err, size_t errlen);
/* True if peer (an IPv4-mapped IPv6 peer counts as IPv4) is in one of the n networks. */
bool proxy_in_peer_allowed(const struct proxy_in_cidr *nets, size_t n,
			   const struct sockaddr_storage *peer);

/* One connection's reading of its header: the bytes of a header that came in pieces (NULL
 * unless it did, and again once it is whole), and the destination a whole header named (NULL
 * if none: the socket's own address stands). Zeroed to start; proxy_in_reader_finish frees. */
struct proxy_in_reader {
	unsigned char *buf;
	size_t len;
	struct sockaddr_storage *dst;
};

enum proxy_in_res {
	PROXY_IN_DONE,  /* the header is read: *peer is its source (if it named one) */
	PROXY_IN_AGAIN, /* wait until fd is readable, then call again */
	PROXY_IN_BAD,   /* bad, oversized or cut short: the reason is in err */
	PROXY_IN_LOCAL, /* a local error (memory): the reason is in err */
};

/* Reads what there is of the header from fd. The header is peeked first and then exactly its
 * own bytes are read, so that no byte of the TLS hello after it is taken. */
enum proxy_in_res proxy_in_read(struct proxy_in_reader *r, int fd, unsigned versions,
				struct sockaddr_storage *peer, char *err, size_t errlen);
void proxy_in_reader_finish(struct proxy_in_reader *r);

#endif
