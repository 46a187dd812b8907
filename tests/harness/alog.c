/* Access-log lines, flat JSON fields, plain HTTP GETs and Prometheus samples (see harness.h). */
#include "internal.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Number of complete lines ('\n'-terminated) in a file; 0 if it cannot be read. */
static int file_lines(const char *path)
{
	char *s = harness_read_file(path, NULL);
	int n = 0;
	char *p;

	for (p = s; p && *p; p++)
		n += *p == '\n';
	free(s);
	return n;
}

int alog_wait_lines(const char *path, int n, int timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;
	int have;

	while ((have = file_lines(path)) < n && harness_now_ms() < deadline)
		harness_nap_ms(10);
	return have;
}

char *alog_line(const char *path, int idx)
{
	char *s = harness_read_file(path, NULL);
	char *p = s, *nl, *line = NULL;

	while (p && idx-- > 0 && (p = strchr(p, '\n')))
		p++;
	if (p && *p && (nl = strchr(p, '\n')))
		line = strndup(p, (size_t)(nl - p));
	free(s);
	return line;
}

char *alog_find(const char *path, const char *key, const char *value)
{
	char *line, val[1024];
	int i;

	for (i = 0; (line = alog_line(path, i)); i++) {
		if (json_str(line, key, val, sizeof(val)) == 0 && strcmp(val, value) == 0)
			return line;
		free(line);
	}
	return NULL;
}

char *alog_wait_find(const char *path, const char *key, const char *value, int timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;
	char *line;

	while (!(line = alog_find(path, key, value)) && harness_now_ms() < deadline)
		harness_nap_ms(10);
	return line;
}

int alog_count(const char *path, const char *key, const char *value)
{
	char *line, val[1024];
	int i, n = 0;

	for (i = 0; (line = alog_line(path, i)); i++) {
		n += json_str(line, key, val, sizeof(val)) == 0 && strcmp(val, value) == 0;
		free(line);
	}
	return n;
}

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* Parses a JSON string at p (which points at '"'); unescapes into out if given. Returns the
 * position after the closing quote, NULL if malformed. */
static const char *json_string(const char *p, char *out, size_t outlen)
{
	size_t n = 0;

	if (*p++ != '"')
		return NULL;
	while (*p && *p != '"') {
		char ch = *p++;

		if (ch == '\\') {
			ch = *p++;
			if (ch == 'n')
				ch = '\n';
			else if (ch == 't')
				ch = '\t';
			else if (ch == 'u' && strlen(p) >= 4)
				ch = '?', p += 4; /* only flat ASCII is expected here */
			else if (!ch)
				return NULL;
		}
		if (out && n + 1 < outlen)
			out[n++] = ch;
	}
	if (out && outlen)
		out[n] = '\0';
	return *p == '"' ? p + 1 : NULL;
}

/* Finds the value of key in a flat object: pointer to its first character or NULL. */
static const char *json_value(const char *line, const char *key)
{
	char k[256];
	const char *p = skip_ws(line);

	if (*p++ != '{')
		return NULL;
	for (;;) {
		p = skip_ws(p);
		if (*p != '"' || !(p = json_string(p, k, sizeof(k))))
			return NULL;
		p = skip_ws(p);
		if (*p++ != ':')
			return NULL;
		p = skip_ws(p);
		if (strcmp(k, key) == 0)
			return p;
		if (*p == '"') {
			if (!(p = json_string(p, NULL, 0)))
				return NULL;
		} else {
			p += strcspn(p, ",}");
		}
		p = skip_ws(p);
		if (*p++ != ',')
			return NULL;
	}
}

bool json_has(const char *line, const char *key)
{
	return json_value(line, key) != NULL;
}

int json_str(const char *line, const char *key, char *out, size_t outlen)
{
	const char *v = json_value(line, key);

	if (!v || *v != '"')
		return -1;
	return json_string(v, out, outlen) ? 0 : -1;
}

int json_num(const char *line, const char *key, double *out)
{
	const char *v = json_value(line, key);
	char *end;

	if (!v || *v == '"')
		return -1;
	*out = strtod(v, &end);
	return end == v ? -1 : 0;
}

/* ---------------------------------------------------------------- HTTP, metrics */

char *harness_http_get(int port, const char *path, int timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;
	int fd = harness_tcp_connect("127.0.0.1", port, timeout_ms);
	char req[512];
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int rl;

	if (fd < 0)
		return NULL;
	rl = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
	if (write(fd, req, (size_t)rl) != rl)
		goto fail;
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (len + 4097 > cap) {
			char *nb = realloc(buf, cap = cap * 2 + 8192);

			if (!nb)
				goto fail;
			buf = nb;
		}
		if (poll(&pfd, 1, harness_remaining_ms(deadline)) != 1)
			goto fail;
		n = read(fd, buf + len, cap - len - 1);
		if (n == 0)
			break;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			goto fail;
		len += n > 0 ? (size_t)n : 0;
	}
	close(fd);
	buf[len] = '\0';
	return buf;
fail:
	close(fd);
	free(buf);
	return NULL;
}

double metrics_value(const char *text, const char *series)
{
	size_t sl = strlen(series);
	const char *p = text;

	while (p && *p) {
		if (strncmp(p, series, sl) == 0 && p[sl] == ' ')
			return strtod(p + sl + 1, NULL);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}
