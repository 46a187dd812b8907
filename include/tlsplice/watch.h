/* Following certificates, keys, client CAs and ticket keys on disk: a change to any of them
 * calls back (debounced), so that a rotated certificate is picked up without a SIGHUP. */
#ifndef TLSPLICE_WATCH_H
#define TLSPLICE_WATCH_H

#include <event2/event.h>

#include "tlsplice/config.h"

#define WATCH_DEBOUNCE_MS 500

struct watch;

/* Watches the folders of every file cfg names for the TLS material (inotify), so that
 * an editor's rename into place and Kubernetes' swap of the "..data" link are seen as well
 * as writes. changed(arg) runs on base's thread once no further change came for
 * WATCH_DEBOUNCE_MS. NULL with errno on failure (no inotify, a folder that cannot be
 * watched). Main thread only. */
struct watch *watch_create(struct event_base *base, const struct config *cfg,
			   void (*changed)(void *arg), void *arg);
void watch_destroy(struct watch *w); /* NULL is a no-op */

#endif
