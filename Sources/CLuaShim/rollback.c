/* Rolling a failed callback back. A callback gets the stored state itself and may change its
 * tables in place; before it runs, every table reachable from the state (through keys and
 * values) is recorded in a log that lives in the registry and is reused from call to call:
 * the table, its metatable and its entries. When the callback fails, or returns the wrong
 * shape, each recorded table gets exactly its recorded entries and metatable back, so the
 * state is as it was, sharing and cycles included. Unlike a copy of the state per call, the
 * log allocates nothing once it has grown to the state's size and leaves no garbage. */
#include <stdint.h>

#include "internal.h"

/* Deepest table nesting in a script's state. */
#define TRELLIS_MAX_STATE_DEPTH 200
/* Tables in a typical state (views, their entries, settings): the set of visited ones starts
 * this big. */
#define TRELLIS_SNAPSHOT_TABLES 32

static void push_registry_table(lua_State *L, const char *key, int size) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) == LUA_TTABLE) return;
    lua_pop(L, 1);
    lua_createtable(L, size, 0);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

static void append(lua_State *L, int log, lua_Integer *length) { lua_rawseti(L, log, ++*length); }

/* Records the table on top of the stack (and pops it), then the tables its keys and values
 * hold; `visited` is the set of tables already recorded. */
static void record_table(trellis_vm *vm, lua_State *L, int log, int visited, lua_Integer *length, int depth) {
    if (depth > TRELLIS_MAX_STATE_DEPTH) luaL_error(L, "the state is nested deeper than %d levels", TRELLIS_MAX_STATE_DEPTH);
    luaL_checkstack(L, 6, "the state is nested too deeply");
    int table = lua_gettop(L);
    lua_pushvalue(L, table);
    if (lua_rawget(L, visited) != LUA_TNIL) {
        lua_pop(L, 2);
        return;
    }
    lua_pop(L, 1);
    lua_pushvalue(L, table);
    lua_pushboolean(L, 1);
    lua_rawset(L, visited);
    vm->snapshot_visited_dirty = 1;
    lua_pushvalue(L, table);
    append(L, log, length);
    if (!lua_getmetatable(L, table)) lua_pushboolean(L, 0);
    append(L, log, length);
    lua_Integer count_slot = ++*length;
    lua_Integer first = *length + 1;
    lua_Integer count = 0;
    lua_pushnil(L);
    while (lua_next(L, table)) {
        lua_pushvalue(L, -2);
        append(L, log, length);
        append(L, log, length);
        count++;
    }
    lua_pushinteger(L, count);
    lua_rawseti(L, log, count_slot);
    for (lua_Integer i = first; i < first + 2 * count; i++) {
        if (lua_rawgeti(L, log, i) == LUA_TTABLE) record_table(vm, L, log, visited, length, depth + 1);
        else lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* Clears the visited set: each recorded table is the first of its record. */
static void clear_visited(trellis_vm *vm, lua_State *L, int log, int visited) {
    lua_Integer i = 1;
    while (i <= vm->snapshot_length) {
        lua_rawgeti(L, log, i);
        lua_pushnil(L);
        lua_rawset(L, visited);
        lua_rawgeti(L, log, i + 2);
        i += 3 + 2 * lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    vm->snapshot_visited_dirty = 0;
}

void trellis_snapshot_state(trellis_vm *vm, lua_State *L) {
    vm->snapshot_length = 0;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &trellis_state_key);
    if (lua_type(L, -1) != LUA_TTABLE) {
        lua_pop(L, 1);
        return;
    }
    if (vm->snapshot_visited_dirty) {
        /* A snapshot that failed halfway left marks and entries behind: start afresh. */
        lua_pushnil(L);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &trellis_snapshot_visited_key);
        lua_pushnil(L);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &trellis_snapshot_log_key);
        vm->snapshot_log_filled = 0;
    }
    push_registry_table(L, &trellis_snapshot_log_key, 0);
    int log = lua_gettop(L);
    push_registry_table(L, &trellis_snapshot_visited_key, 0);
    int visited = lua_gettop(L);
    lua_pushvalue(L, log - 1);
    lua_Integer length = 0;
    record_table(vm, L, log, visited, &length, 0);
    for (lua_Integer i = length + 1; i <= vm->snapshot_log_filled; i++) {
        lua_pushnil(L);
        lua_rawseti(L, log, i);
    }
    vm->snapshot_log_filled = length;
    vm->snapshot_length = length;
    clear_visited(vm, L, log, visited);
    lua_pop(L, 3);
}

static int restore_body(lua_State *L) {
    trellis_vm *vm = trellis_vm_of(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &trellis_snapshot_log_key);
    int log = lua_gettop(L);
    lua_Integer i = 1;
    while (i <= vm->snapshot_length) {
        lua_rawgeti(L, log, i);
        int table = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, table)) {
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            lua_pushnil(L);
            lua_rawset(L, table);
        }
        if (lua_rawgeti(L, log, i + 1) == LUA_TBOOLEAN) {
            lua_pop(L, 1);
            lua_pushnil(L);
        }
        lua_setmetatable(L, table);
        lua_rawgeti(L, log, i + 2);
        lua_Integer count = lua_tointeger(L, -1);
        lua_pop(L, 1);
        for (lua_Integer entry = i + 3; entry < i + 3 + 2 * count; entry += 2) {
            lua_rawgeti(L, log, entry);
            lua_rawgeti(L, log, entry + 1);
            lua_rawset(L, table);
        }
        lua_pop(L, 1);
        i += 3 + 2 * count;
    }
    return 0;
}

/* Restoring puts back entries the tables held before the call, which may need the memory
 * they had then: the cap is lifted meanwhile, as the state fitted under it before. */
int trellis_vm_restore_state(trellis_vm *vm) {
    if (vm->snapshot_length == 0) return TRELLIS_OK;
    lua_State *L = vm->L;
    if (!lua_checkstack(L, 1)) return TRELLIS_ERRMEM;
    size_t cap = vm->memory_cap;
    vm->memory_cap = SIZE_MAX;
    lua_pushcfunction(L, restore_body);
    int status = lua_pcall(L, 0, 0, 0);
    vm->memory_cap = cap;
    if (status != LUA_OK) lua_pop(L, 1);
    vm->snapshot_length = 0;
    return status;
}
