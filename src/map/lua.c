/* SPDX-License-Identifier: MIT */
/*
 * Custom mapping functions in Lua (`expr: lua.fn(args)`), run by LuaJIT in a sandbox: only
 * the base (without dofile/loadfile/load/loadstring/require), string, table and math
 * libraries exist, so a mapping cannot touch files, processes or the network. Each call has a
 * time limit enforced by a count hook that checks the clock every few thousand instructions;
 * the JIT is switched off because compiled traces do not run hooks. One Lua state per plan,
 * guarded by a mutex (lua_State is not reentrant).
 *
 * Values: null <-> nil, booleans, numbers (passed as Lua numbers; decimals come back exact
 * when they have at most 15 significant digits), text, lists <-> sequences, objects <->
 * tables with string keys.
 */
#include <lauxlib.h>
#include <lua.h>
#include <luajit.h>
#include <lualib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/mem.h"
#include "map/internal.h"

#define LUA_DEFAULT_MS 1000
#define HOOK_EVERY     10000

struct es_lua {
    lua_State *L;
    pthread_mutex_t mu;
    long limit_ms;
    int64_t deadline;
    int timed_out;
};

static void hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_getfield(L, LUA_REGISTRYINDEX, "es_lua");
    struct es_lua *l = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (l && es_clock_mono_ms() > l->deadline) {
        l->timed_out = 1;
        luaL_error(L, "time limit of %d ms exceeded", (int)l->limit_ms);
    }
}

static void open_lib(lua_State *L, const char *name, lua_CFunction fn)
{
    lua_pushcfunction(L, fn);
    lua_pushstring(L, name);
    lua_call(L, 1, 0);
}

int es_lua_open(const char *path, struct es_lua **out, char *msg, size_t cap)
{
    *out = NULL;
    lua_State *L = luaL_newstate();
    if (!L) {
        snprintf(msg, cap, "cannot create a Lua state");
        return ES_ECONFIG;
    }
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    open_lib(L, "", luaopen_base);
    open_lib(L, LUA_STRLIBNAME, luaopen_string);
    open_lib(L, LUA_TABLIBNAME, luaopen_table);
    open_lib(L, LUA_MATHLIBNAME, luaopen_math);
    static const char *const banned[] = {"dofile",  "loadfile", "load",           "loadstring",
                                         "require", "module",   "collectgarbage", "getfenv",
                                         "setfenv", "newproxy", "print",          NULL};
    for (const char *const *b = banned; *b; b++) {
        lua_pushnil(L);
        lua_setglobal(L, *b);
    }
    /* string.dump could smuggle bytecode back in through another door; drop it. */
    lua_getglobal(L, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);

    struct es_lua *l = es_xcalloc(1, sizeof *l);
    l->L = L;
    l->limit_ms = LUA_DEFAULT_MS;
    pthread_mutex_init(&l->mu, NULL);
    lua_pushlightuserdata(L, l);
    lua_setfield(L, LUA_REGISTRYINDEX, "es_lua");

    if (luaL_loadfile(L, path) != 0) {
        snprintf(msg, cap, "%s", lua_tostring(L, -1));
        es_lua_close(l);
        return ES_ECONFIG;
    }
    l->deadline = es_clock_mono_ms() + l->limit_ms;
    lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_EVERY);
    if (lua_pcall(L, 0, 1, 0) != 0) {
        snprintf(msg, cap, "%s: %s", path, lua_tostring(L, -1));
        es_lua_close(l);
        return ES_ECONFIG;
    }
    lua_sethook(L, NULL, 0, 0);
    /* A file may return a table of functions; otherwise its global functions are used. */
    if (lua_istable(L, -1)) {
        lua_setfield(L, LUA_REGISTRYINDEX, "es_fns");
    } else {
        lua_pop(L, 1);
        lua_pushvalue(L, LUA_GLOBALSINDEX);
        lua_setfield(L, LUA_REGISTRYINDEX, "es_fns");
    }
    *out = l;
    return ES_OK;
}

void es_lua_close(struct es_lua *l)
{
    if (!l) {
        return;
    }
    lua_close(l->L);
    pthread_mutex_destroy(&l->mu);
    es_free(l);
}

void es_lua_set_limits(struct es_lua *l, long ms)
{
    l->limit_ms = ms > 0 ? ms : LUA_DEFAULT_MS;
}

static void push_fn(lua_State *L, const char *name)
{
    lua_getfield(L, LUA_REGISTRYINDEX, "es_fns");
    lua_getfield(L, -1, name);
    lua_remove(L, -2);
}

int es_lua_has(struct es_lua *l, const char *name)
{
    pthread_mutex_lock(&l->mu);
    push_fn(l->L, name);
    int ok = lua_isfunction(l->L, -1);
    lua_pop(l->L, 1);
    pthread_mutex_unlock(&l->mu);
    return ok;
}

static void push_value(lua_State *L, struct es_mv *v, int depth)
{
    struct es_dec d;
    char tmp[48];
    switch (v ? v->kind : MV_NULL) {
    case MV_NULL:
        lua_pushnil(L);
        break;
    case MV_BOOL:
        lua_pushboolean(L, v->u.b);
        break;
    case MV_NUM:
        if (es_mv_num_dec(v, &d) == ES_OK) {
            es_dec_format(d, tmp, sizeof tmp);
            lua_pushnumber(L, strtod(tmp, NULL));
        } else {
            lua_pushlstring(L, v->u.num.raw, v->u.num.rawlen);
        }
        break;
    case MV_STR:
        lua_pushlstring(L, v->u.str.s, v->u.str.n);
        break;
    case MV_DATE: {
        size_t n = es_date_format(&v->u.date, NULL, tmp, sizeof tmp);
        lua_pushlstring(L, tmp, n);
        break;
    }
    case MV_ARR:
        lua_createtable(L, (int)v->u.arr.n, 0);
        for (size_t i = 0; i < v->u.arr.n && depth < 32; i++) {
            push_value(L, v->u.arr.items[i], depth + 1);
            lua_rawseti(L, -2, (int)i + 1);
        }
        break;
    case MV_OBJ:
        lua_createtable(L, 0, (int)v->u.obj.n);
        for (size_t i = 0; i < v->u.obj.n && depth < 32; i++) {
            lua_pushlstring(L, v->u.obj.pairs[i].key, v->u.obj.pairs[i].klen);
            push_value(L, v->u.obj.pairs[i].val, depth + 1);
            lua_rawset(L, -3);
        }
        break;
    }
}

static int pair_less(const struct es_mv_pair *a, const struct es_mv_pair *b)
{
    size_t n = a->klen < b->klen ? a->klen : b->klen;
    int c = memcmp(a->key, b->key, n);
    return c < 0 || (c == 0 && a->klen < b->klen);
}

static struct es_mv *to_value(lua_State *L, int idx, struct es_arena *a, int depth)
{
    size_t n;
    const char *s;
    char tmp[64];
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
        return es_mv_bool(a, lua_toboolean(L, idx));
    case LUA_TNUMBER: {
        int len = snprintf(tmp, sizeof tmp, "%.15g", lua_tonumber(L, idx));
        struct es_dec d;
        if (es_dec_parse(tmp, (size_t)len, &d) == ES_OK) {
            return es_mv_dec(a, es_dec_normalize(d));
        }
        return es_mv_str(a, tmp, (size_t)len);
    }
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &n);
        return es_mv_str(a, s, n);
    case LUA_TTABLE: {
        if (depth > 32) {
            return &es_mv_null_value;
        }
        if (idx < 0) {
            idx = lua_gettop(L) + idx + 1;
        }
        size_t len = lua_objlen(L, idx);
        if (len > 0) {
            struct es_mv *arr = es_mv_new(a, MV_ARR);
            for (size_t i = 1; i <= len; i++) {
                lua_rawgeti(L, idx, (int)i);
                es_mv_arr_push(a, arr, to_value(L, -1, a, depth + 1));
                lua_pop(L, 1);
            }
            return arr;
        }
        struct es_mv *obj = es_mv_new(a, MV_OBJ);
        lua_pushnil(L);
        while (lua_next(L, idx) != 0) {
            if (lua_type(L, -2) == LUA_TSTRING) {
                s = lua_tolstring(L, -2, &n);
                es_mv_set(a, obj, s, n, to_value(L, -1, a, depth + 1));
            }
            lua_pop(L, 1);
        }
        /* Lua tables have no order: sort keys so the same result is always the same JSON
         * (echo fingerprints compare it). */
        for (size_t i = 1; i < obj->u.obj.n; i++) {
            struct es_mv_pair p = obj->u.obj.pairs[i];
            size_t j = i;
            while (j > 0 && pair_less(&p, &obj->u.obj.pairs[j - 1])) {
                obj->u.obj.pairs[j] = obj->u.obj.pairs[j - 1];
                j--;
            }
            obj->u.obj.pairs[j] = p;
        }
        return obj;
    }
    default:
        return &es_mv_null_value;
    }
}

int es_lua_call(struct es_lua *l, const char *name, struct es_mv **args, size_t nargs,
                struct es_eval *ev, struct es_mv **out)
{
    if (!l) {
        return es_eval_fail(ev, ES_EINTERNAL, "lua.%s: no Lua state", name);
    }
    pthread_mutex_lock(&l->mu);
    lua_State *L = l->L;
    int top = lua_gettop(L);
    push_fn(L, name);
    for (size_t i = 0; i < nargs; i++) {
        push_value(L, args[i], 0);
    }
    l->timed_out = 0;
    l->deadline = es_clock_mono_ms() + l->limit_ms;
    lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_EVERY);
    int rc = ES_OK;
    if (lua_pcall(L, (int)nargs, 1, 0) != 0) {
        const char *m = lua_tostring(L, -1);
        rc = es_eval_fail(ev, l->timed_out ? ES_ETIMEOUT : ES_EVALIDATION, "lua.%s: %s", name,
                          m ? m : "error");
    } else {
        *out = to_value(L, -1, ev->arena, 0);
    }
    lua_sethook(L, NULL, 0, 0);
    lua_settop(L, top);
    pthread_mutex_unlock(&l->mu);
    return rc;
}
