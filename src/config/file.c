/* Reading the files a config names, and the config itself: only regular files of a sane size,
 * so that a FIFO or a device (/dev/zero) fails at once instead of blocking or never ending. */
#include "tlsplice/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int file_fail(int e, const char *reason, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s", reason ? reason : strerror(e));
	errno = e;
	return -1;
}

/* Opens path for reading if it is a regular file within the limit; -1 with a reason. It is
 * checked before opening (opening a device can have effects) and again after (it may have
 * been swapped in between). */
static int file_open(const char *path, char *err, size_t errlen)
{
	static const char too_big[] = "larger than " CONFIG_FILE_MAX_TEXT;
	static const char not_reg[] = "not a regular file";
	struct stat sb;
	int fd;

	if (stat(path, &sb) < 0)
		return file_fail(errno, NULL, err, errlen);
	if (S_ISDIR(sb.st_mode))
		return file_fail(EISDIR, NULL, err, errlen);
	if (!S_ISREG(sb.st_mode))
		return file_fail(EINVAL, not_reg, err, errlen);
	if (sb.st_size > (off_t)CONFIG_FILE_MAX)
		return file_fail(EFBIG, too_big, err, errlen);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return file_fail(errno, NULL, err, errlen);
	if (fstat(fd, &sb) < 0) {
		int e = errno;

		close(fd);
		return file_fail(e, NULL, err, errlen);
	}
	if (S_ISREG(sb.st_mode) && sb.st_size <= (off_t)CONFIG_FILE_MAX)
		return fd;
	close(fd);
	if (!S_ISREG(sb.st_mode))
		return file_fail(EINVAL, not_reg, err, errlen);
	return file_fail(EFBIG, too_big, err, errlen);
}

int config_file_check(const char *path, char *err, size_t errlen)
{
	int fd;

	errno = 0;
	fd = file_open(path, err, errlen);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

/* Reads fd to its end into buf (cap bytes); -1 with errno, EFBIG if it does not fit. */
static ssize_t fd_read_all(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	for (;;) {
		ssize_t got = read(fd, buf + n, cap - n);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -1;
		if (got == 0)
			return (ssize_t)n;
		n += (size_t)got;
		if (n == cap) {
			errno = EFBIG;
			return -1;
		}
	}
}

int config_file_read(const char *path, char **text, size_t *len, char *err, size_t errlen)
{
	/* one byte more than the limit tells a file that grew past it from one that fits */
	size_t cap = CONFIG_FILE_MAX + 2;
	char *buf;
	ssize_t n;
	int fd, e;

	errno = 0;
	fd = file_open(path, err, errlen);
	if (fd < 0)
		return -1;
	buf = malloc(cap);
	if (buf == NULL) {
		close(fd);
		return file_fail(ENOMEM, NULL, err, errlen);
	}
	n = fd_read_all(fd, buf, cap - 1);
	e = errno;
	close(fd);
	if (n < 0 || (size_t)n > CONFIG_FILE_MAX) {
		explicit_bzero(buf, cap);
		free(buf);
		if (n >= 0 || e == EFBIG)
			return file_fail(EFBIG, "larger than " CONFIG_FILE_MAX_TEXT, err, errlen);
		return file_fail(e, NULL, err, errlen);
	}
	buf[n] = '\0';
	*text = buf;
	*len = (size_t)n;
	return 0;
}
