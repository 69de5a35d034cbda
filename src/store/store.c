/* SPDX-License-Identifier: MIT */
/*
 * The store front: picks the implementation from the config URL, names the change states,
 * and wraps each op so call sites read es_store_enqueue(s, ...) whatever the backend.
 */
#include <string.h>

#include "core/mem.h"
#include "store/store.h"

static const char *const state_names[ES_CHANGE_STATE_LAST] = {
    [ES_CHANGE_PENDING] = "pending", [ES_CHANGE_LEASED] = "leased", [ES_CHANGE_DONE] = "done",
    [ES_CHANGE_RETRY] = "retry",     [ES_CHANGE_REVIEW] = "review", [ES_CHANGE_DEAD] = "dead",
};

const char *es_change_state_name(enum es_change_state s)
{
    if ((unsigned)s >= ES_CHANGE_STATE_LAST) {
        return "unknown";
    }
    return state_names[s];
}

enum es_change_state es_change_state_from_name(const char *name)
{
    for (int i = 0; name && i < ES_CHANGE_STATE_LAST; i++) {
        if (strcmp(state_names[i], name) == 0) {
            return (enum es_change_state)i;
        }
    }
    return ES_CHANGE_STATE_LAST;
}

void es_change_release(struct es_change *c)
{
    if (!c) {
        return;
    }
    es_free(c->flow);
    es_free(c->key);
    es_free(c->version);
    es_free(c->payload);
    es_free(c->last_msg);
    es_free(c->last_remote_code);
    es_free(c->last_remote_msg);
    es_free(c->last_hint);
    es_free(c->note);
    memset(c, 0, sizeof *c);
}

void es_changes_free(struct es_change *c, size_t n)
{
    if (!c) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        es_change_release(&c[i]);
    }
    es_free(c);
}

int es_store_open(const char *url, struct es_store **out, struct es_err *err)
{
    *out = NULL;
    if (!url || !*url) {
        return es_err_set(err, ES_ECONFIG, "store: empty location");
    }
    if (strncmp(url, "sqlite:", 7) == 0) {
        return es_store_sqlite_ops.open(url + 7, out, err);
    }
    if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0) {
        es_err_set(err, ES_ECONFIG, "store: the PostgreSQL store is not built yet");
        es_err_hint(err, "use store: sqlite:PATH");
        return ES_ECONFIG;
    }
    if (strchr(url, ':') && !strchr(url, '/')) {
        return es_err_set(err, ES_ECONFIG, "store: unknown scheme in '%s'", url);
    }
    return es_store_sqlite_ops.open(url, out, err);
}

void es_store_close(struct es_store *s)
{
    if (s) {
        s->ops->close(s);
    }
}

int es_store_enqueue(struct es_store *s, const struct es_change_in *in, size_t n,
                     const struct es_cursor_in *cursors, size_t ncursors, unsigned char *added,
                     struct es_err *err)
{
    return s->ops->enqueue(s, in, n, cursors, ncursors, added, err);
}

int es_store_lease(struct es_store *s, const char *flow, size_t max, int64_t now_ms,
                   int64_t lease_ms, struct es_change **out, size_t *n, struct es_err *err)
{
    return s->ops->lease(s, flow, max, now_ms, lease_ms, out, n, err);
}

int es_store_complete(struct es_store *s, struct es_outcome *out, size_t n, int64_t now_ms,
                      struct es_err *err)
{
    return s->ops->complete(s, out, n, now_ms, err);
}

int es_store_renew(struct es_store *s, uint64_t lease, int64_t until_ms, struct es_err *err)
{
    return s->ops->renew(s, lease, until_ms, err);
}

int es_store_recover(struct es_store *s, size_t *n, struct es_err *err)
{
    return s->ops->recover(s, n, err);
}

int es_store_cursor_get(struct es_store *s, const char *flow, const char *name, char **value,
                        struct es_err *err)
{
    return s->ops->cursor_get(s, flow, name, value, err);
}

int es_store_cursor_set(struct es_store *s, const char *flow, const char *name, const char *value,
                        struct es_err *err)
{
    return s->ops->cursor_set(s, flow, name, value, err);
}

int es_store_flow_pause(struct es_store *s, const char *flow, const char *reason,
                        struct es_err *err)
{
    return s->ops->flow_pause(s, flow, reason, err);
}

int es_store_stats(struct es_store *s, const char *flow, int64_t now_ms, struct es_flow_stats *out,
                   struct es_err *err)
{
    return s->ops->stats(s, flow, now_ms, out, err);
}

int es_store_list(struct es_store *s, const struct es_change_filter *f, struct es_change **out,
                  size_t *n, struct es_err *err)
{
    return s->ops->list(s, f, out, n, err);
}

int es_store_get(struct es_store *s, int64_t id, struct es_change *out, struct es_err *err)
{
    return s->ops->get(s, id, out, err);
}

int es_store_replay(struct es_store *s, int64_t id, const char *note, struct es_err *err)
{
    return s->ops->replay(s, id, note, err);
}

int es_store_resolve(struct es_store *s, int64_t id, const char *note, struct es_err *err)
{
    return s->ops->resolve(s, id, note, err);
}

int es_store_xref_lookup(struct es_store *s, const char *entity, const char *system, const char *id,
                         const char *other_system, char **out, struct es_err *err)
{
    return s->ops->xref_lookup(s, entity, system, id, other_system, out, err);
}

int es_store_xref_links(struct es_store *s, const char *entity, const char *system, const char *id,
                        char **global, struct es_xref_link **links, size_t *n, struct es_err *err)
{
    return s->ops->xref_links(s, entity, system, id, global, links, n, err);
}

int es_store_fingerprint_get(struct es_store *s, const char *entity, const char *system,
                             const char *id, char **out, struct es_err *err)
{
    return s->ops->fingerprint_get(s, entity, system, id, out, err);
}

int es_store_audit(struct es_store *s, int64_t change_id, size_t limit, struct es_audit **out,
                   size_t *n, struct es_err *err)
{
    return s->ops->audit(s, change_id, limit, out, n, err);
}

int es_store_prune(struct es_store *s, int64_t before_ms, size_t *changes, size_t *audits,
                   struct es_err *err)
{
    return s->ops->prune(s, before_ms, changes, audits, err);
}
