/* A server's up/down state machine, fed by active checks and by live connects, and the
 * passive probe that revives a server no check watches. Lock-free: each state change is
 * decided by one compare-and-swap, so concurrent reporters change (and log) it once. */
#include "tlsplice/server.h"

#include <stdio.h>
#include <string.h>

#include "tlsplice/clock.h"
#include "tlsplice/log.h"
#include "tlsplice/pool-t.h"

void server_setup(struct server *s, struct pool *p, const struct cfg_server *cfg, unsigned idx)
{
	s->cfg = cfg;
	s->pool = p;
	s->idx = idx;
	atomic_init(&s->up, true);
	atomic_init(&s->admin, SERVER_READY);
}

static int clamp_min1(int v)
{
	return v > 0 ? v : 1;
}

static const char *backend_name(const struct server *s)
{
	return s->pool && s->pool->cfg && s->pool->cfg->name ? s->pool->cfg->name : "?";
}

static const char *server_name(const struct server *s)
{
	return s->cfg ? s->cfg->addr.text : "?";
}

static unsigned servers_up(const struct pool *p)
{
	unsigned n = 0;

	for (unsigned i = 0; i < p->nservers; i++)
		n += atomic_load(&p->servers[i].up);
	return n;
}

static const struct server *first_up(const struct pool *p)
{
	for (unsigned i = 0; i < p->nservers; i++)
		if (atomic_load(&p->servers[i].up))
			return &p->servers[i];
	return NULL;
}

/* One line when a backend is left with no server up, and one when it has one again. The
 * servers are counted, then the mark none_up set by compare-and-swap, until the two agree:
 * of concurrent reporters only the one that flips the mark logs, and a reporter that counted
 * before another's change (and so flipped the mark the wrong way) counts again and flips it
 * back, so once the reporters are done the mark matches the servers. */
void server_sync_availability(struct pool *p)
{
	for (unsigned round = 0; round < 64; round++) { /* each round follows another's flip */
		const struct server *up = first_up(p);
		bool was = atomic_load(&p->none_up);

		if (was == !up)
			return;
		if (!atomic_compare_exchange_strong(&p->none_up, &was, !up))
			continue;
		if (up)
			log_info("backend %s has a server available again: %s", p->cfg->name,
				 up->cfg->addr.text);
		else
			log_error("backend %s has no server available: its clients are closed "
				  "after the handshake (close = no_server)",
				  p->cfg->name);
	}
}

/* Flips s to to_up. Only the thread whose CAS flips the flag logs and resets the streaks,
 * so concurrent reporters change (and log) each state exactly once. */
static bool transition(struct server *s, bool to_up, const char *reason, int n, int of,
		       uint64_t now_ms)
{
	const struct cfg_backend *b = s->pool->cfg;
	bool expected = !to_up;

	/* armed before the flip: a picker that sees the server down must already see a
	 * future retry time, or it would probe at once */
	if (!to_up && b->check == CHECK_NONE)
		atomic_store(&s->retry_at_ms, now_ms + b->check_interval_ms);
	if (!atomic_compare_exchange_strong(&s->up, &expected, to_up))
		return false;
	atomic_store(&s->changed_ms, now_ms);
	if (n > of)
		n = of; /* concurrent reporters may overshoot the threshold */
	if (to_up) {
		atomic_store(&s->up_since_ms, now_ms); /* slowstart ramps from here */
		atomic_store(&s->fail_streak, 0);
		log_info("backend %s server %s is UP: %s (%d/%d)", backend_name(s), server_name(s),
			 reason, n, of);
	} else {
		atomic_store(&s->ok_streak, 0);
		log_warn("backend %s server %s is DOWN: %s (%d/%d); %u of %u servers of backend "
			 "%s up",
			 backend_name(s), server_name(s), reason, n, of, servers_up(s->pool),
			 s->pool->nservers, backend_name(s));
	}
	server_sync_availability(s->pool);
	return true;
}

/* The first active check result decides the state at once. Returns false if another
 * result was first, so the caller applies rise/fall instead. */
static bool first_result(struct server *s, bool ok, const char *reason, uint64_t now_ms,
			 bool *changed)
{
	bool expected = false;

	*changed = false;
	if (!atomic_compare_exchange_strong(&s->checked, &expected, true))
		return false;
	if (ok)
		atomic_store(&s->fail_streak, 0);
	else
		atomic_store(&s->ok_streak, 0);
	*changed = transition(s, ok, reason, 1, 1, now_ms);
	return true;
}

static bool up_failure(struct server *s, const char *reason, uint64_t now_ms)
{
	int fall = clamp_min1(s->pool->cfg->check_fall);
	int n = atomic_fetch_add(&s->fail_streak, 1) + 1;

	if (n < fall)
		return false;
	return transition(s, false, reason, n, fall, now_ms);
}

/* A live success proves a down server only when no active check owns its recovery:
 * with check = none it is the one probe connection let through after check_interval. */
static bool down_success(struct server *s, bool live, const char *reason, uint64_t now_ms)
{
	const struct cfg_backend *b = s->pool->cfg;
	int rise = clamp_min1(b->check_rise);
	int n;

	if (live)
		return b->check == CHECK_NONE && transition(s, true, reason, 1, 1, now_ms);
	n = atomic_fetch_add(&s->ok_streak, 1) + 1;
	if (n < rise)
		return false;
	return transition(s, true, reason, n, rise, now_ms);
}

/* A failure while down breaks the rise streak; with check = none it also re-arms the
 * passive retry, since the probe connection that pool_pick let through just failed. */
static bool down_failure(struct server *s, bool live, uint64_t now_ms)
{
	const struct cfg_backend *b = s->pool->cfg;

	atomic_store(&s->ok_streak, 0);
	if (live && b->check == CHECK_NONE)
		atomic_store(&s->retry_at_ms, now_ms + b->check_interval_ms);
	return false;
}

bool server_report(struct server *s, bool ok, bool live, const char *reason, uint64_t now_ms)
{
	bool changed;

	if (!reason)
		reason = ok ? (live ? "connection succeeded" : "check passed")
			    : (live ? "connection failed" : "check failed");
	if (!live && !ok)
		atomic_fetch_add(&s->check_failures, 1);
	if (!live && !atomic_load(&s->checked) && first_result(s, ok, reason, now_ms, &changed))
		return changed;
	if (atomic_load(&s->up)) {
		if (ok) {
			atomic_store(&s->fail_streak, 0);
			return false;
		}
		return up_failure(s, reason, now_ms);
	}
	return ok ? down_success(s, live, reason, now_ms) : down_failure(s, live, now_ms);
}

/* At most one line a second: a proxy out of fds fails every connect and every check at
 * once, and the log must not add to the storm. */
void server_report_local(const struct server *s, const char *what, const char *reason)
{
	static _Atomic uint64_t last_s;
	static atomic_uint skipped;
	uint64_t now_s = clock_mono_ms() / 1000 + 1; /* never 0, the initial value */
	char more[64] = "";
	unsigned n;

	if (atomic_exchange(&last_s, now_s) == now_s) {
		atomic_fetch_add(&skipped, 1);
		return;
	}
	n = atomic_exchange(&skipped, 0);
	if (n)
		snprintf(more, sizeof(more), " (and %u more not logged)", n);
	log_warn("backend %s server %s: %s: local error, not counted against server: %s%s",
		 backend_name(s), server_name(s), what, reason, more);
}

void server_report_connect(struct server *s, bool ok, const char *reason, uint64_t now_ms)
{
	atomic_fetch_add(ok ? &s->connections : &s->connect_failures, 1);
	server_report(s, ok, true, reason, now_ms);
}

/* A down server with check = none may carry one probing connection once retry_at passes. */
static bool claim_probe(struct server *s, uint64_t now_ms)
{
	if (s->pool->cfg->check != CHECK_NONE)
		return false;
	uint_fast64_t at = atomic_load(&s->retry_at_ms);
	if (at == 0 || now_ms < at)
		return false;
	return atomic_compare_exchange_strong(&s->retry_at_ms, &at,
					      now_ms + s->pool->cfg->check_interval_ms);
}

bool server_usable(struct server *s, uint64_t now_ms)
{
	return atomic_load(&s->up) || claim_probe(s, now_ms);
}

/* What the operator set at run time outlives a reload while the server stays in the file;
 * the log says so, since the file alone no longer tells the server's state. */
static void inherit_admin(struct server *s, const struct server *old)
{
	int a = atomic_load(&old->admin), w = atomic_load(&old->weight);

	atomic_store(&s->admin, a);
	atomic_store(&s->weight, w);
	atomic_store(&s->changed_ms, atomic_load(&old->changed_ms));
	if (a != SERVER_READY || w != 0)
		log_info("reload: backend %s server %s keeps its run-time settings: state %s, "
			 "weight %d",
			 backend_name(s), server_name(s), server_admin_name((enum server_admin)a),
			 server_weight(s));
}

void server_inherit(struct server *s, const struct server *old, uint64_t now_ms)
{
	const struct cfg_backend *b = s->pool->cfg;
	uint_fast64_t at = 0;

	inherit_admin(s, old);
	atomic_store(&s->up, atomic_load(&old->up));
	atomic_store(&s->checked, atomic_load(&old->checked));
	atomic_store(&s->ok_streak, atomic_load(&old->ok_streak));
	atomic_store(&s->fail_streak, atomic_load(&old->fail_streak));
	atomic_store(&s->connections, atomic_load(&old->connections));
	atomic_store(&s->connect_failures, atomic_load(&old->connect_failures));
	atomic_store(&s->check_failures, atomic_load(&old->check_failures));
	atomic_store(&s->up_since_ms, atomic_load(&old->up_since_ms));
	/* a retry time means something only where check = none armed it; a server that active
	 * checks took down has none, and with check = none nothing else would ever revive it */
	if (old->pool->cfg->check == CHECK_NONE)
		at = atomic_load(&old->retry_at_ms);
	if (b->check == CHECK_NONE && !atomic_load(&s->up) &&
	    (at == 0 || at > now_ms + b->check_interval_ms))
		at = now_ms + b->check_interval_ms;
	atomic_store(&s->retry_at_ms, at);
}

bool server_admin_ready(const struct server *s)
{
	return atomic_load(&s->admin) == SERVER_READY;
}

bool server_pickable(struct server *s, uint64_t now_ms)
{
	return server_admin_ready(s) && server_usable(s, now_ms);
}

bool server_serving(const struct server *s)
{
	return atomic_load(&s->admin) == SERVER_READY && atomic_load(&s->up);
}

int server_weight(const struct server *s)
{
	int w = atomic_load(&s->weight);

	return w > 0 ? w : s->cfg->weight;
}

bool server_in_maint(const struct server *s)
{
	return atomic_load(&s->admin) == SERVER_MAINT;
}

static const char *const admin_names[] = { "ready", "drain", "maint" };

const char *server_admin_name(enum server_admin a)
{
	return (unsigned)a < 3 ? admin_names[a] : "?";
}

int server_admin_parse(const char *word, enum server_admin *out)
{
	for (int i = 0; i < 3; i++) {
		if (strcmp(word, admin_names[i]) == 0) {
			*out = (enum server_admin)i;
			return 0;
		}
	}
	return -1;
}

void server_set_admin(struct server *s, enum server_admin a)
{
	int old = atomic_exchange(&s->admin, (int)a);

	if (old == (int)a)
		return;
	atomic_store(&s->changed_ms, clock_mono_ms());
	log_info("backend %s server %s: state %s -> %s (control socket)", backend_name(s),
		 server_name(s), server_admin_name((enum server_admin)old), server_admin_name(a));
}

void server_set_weight(struct server *s, int weight)
{
	int old = server_weight(s);

	atomic_store(&s->weight, weight);
	atomic_store(&s->changed_ms, clock_mono_ms());
	log_info("backend %s server %s: weight %d -> %d (control socket)", backend_name(s),
		 server_name(s), old, weight);
}
