/* Rolling a failed callback back. A callback gets the stored state itself and may change its
 * tables in place; before it runs, every table reachable from the state (through keys and
 * values) is recorded in a log: the table, its metatable and its entries. When the callback
 * fails, or returns the wrong shape, each recorded table gets exactly its recorded entries and
 * metatable back, so the state is as it was, sharing and cycles included.
 *
 * The log is the stack of a Lua thread that never runs (anchored in the registry): recording
 * an entry is a push, with no table to grow or look up, and the log is dropped by emptying
 * that stack. Per recorded table it holds: the table, its metatable (false for none), its
 * number of entries, then each entry as a key and a value. Which tables are already recorded
 * is kept in a C set of their addresses. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Deepest table nesting in a script's state. */
#define TRELLIS_MAX_STATE_DEPTH 200
/* Slots the visited set starts with (a typical state holds a few dozen tables). */
#define TRELLIS_VISITED_INITIAL 64

static int too_large(lua_State *L) {
    return luaL_error(L, "the state is too large to record for rollback (about 500,000 table entries at most); "
                         "keep bulk data out of the state");
}

static size_t slot_of(const void *table, size_t capacity) {
    return (size_t)(((uintptr_t)table >> 4) * UINT64_C(0x9e3779b97f4a7c15) >> 20) & (capacity - 1);
}

static void visited_insert(struct trellis_visited *set, const void *table) {
    size_t slot = slot_of(table, set->capacity);
    while (set->slots[slot] != NULL) slot = (slot + 1) & (set->capacity - 1);
    set->slots[slot] = table;
    set->count++;
}

/* Adds table to the set; returns 0 when it was already there. Raises when out of memory. */
static int visit(lua_State *L, struct trellis_visited *set, const void *table) {
    if (set->capacity > 0) {
        for (size_t slot = slot_of(table, set->capacity); set->slots[slot] != NULL; slot = (slot + 1) & (set->capacity - 1)) {
            if (set->slots[slot] == table) return 0;
        }
    }
    if (2 * (set->count + 1) > set->capacity) {
        struct trellis_visited grown = {NULL, set->capacity ? 2 * set->capacity : TRELLIS_VISITED_INITIAL, 0};
        grown.slots = calloc(grown.capacity, sizeof *grown.slots);
        if (grown.slots == NULL) return luaL_error(L, "not enough memory to record the state for rollback");
        for (size_t slot = 0; slot < set->capacity; slot++) {
            if (set->slots[slot] != NULL) visited_insert(&grown, set->slots[slot]);
        }
        free(set->slots);
        *set = grown;
    }
    visited_insert(set, table);
    return 1;
}

void trellis_visited_release(struct trellis_visited *set) {
    free(set->slots);
    memset(set, 0, sizeof *set);
}

/* Records the table on top of the log (or pops it when it is already recorded), then the
 * tables its keys and values hold. */
static void record_table(lua_State *L, lua_State *log, struct trellis_visited *visited, int depth) {
    if (depth > TRELLIS_MAX_STATE_DEPTH) luaL_error(L, "the state is nested deeper than %d levels", TRELLIS_MAX_STATE_DEPTH);
    int table = lua_gettop(log);
    if (!visit(L, visited, lua_topointer(log, table))) {
        lua_pop(log, 1);
        return;
    }
    if (!lua_checkstack(log, 4)) too_large(L);
    if (!lua_getmetatable(log, table)) lua_pushboolean(log, 0);
    lua_pushinteger(log, 0);
    int count = 0;
    lua_pushnil(log);
    while (lua_next(log, table)) {
        if (!lua_checkstack(log, 3)) too_large(L);
        lua_pushvalue(log, -2);
        count++;
    }
    lua_pushinteger(log, count);
    lua_replace(log, table + 2);
    int last = table + 2 + 2 * count;
    for (int slot = table + 3; slot <= last; slot++) {
        if (lua_type(log, slot) != LUA_TTABLE) continue;
        if (!lua_checkstack(log, 1)) too_large(L);
        lua_pushvalue(log, slot);
        record_table(L, log, visited, depth + 1);
    }
}

/* The log thread, created on first use. */
static lua_State *log_thread(trellis_vm *vm, lua_State *L) {
    if (vm->snapshot_log == NULL) {
        lua_State *log = lua_newthread(L);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &trellis_snapshot_log_key);
        vm->snapshot_log = log;
    }
    return vm->snapshot_log;
}

void trellis_snapshot_state(trellis_vm *vm, lua_State *L) {
    vm->snapshot_length = 0;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &trellis_state_key);
    if (lua_type(L, -1) != LUA_TTABLE) {
        lua_pop(L, 1);
        return;
    }
    lua_State *log = log_thread(vm, L);
    lua_settop(log, 0);
    if (vm->visited.count > 0) {
        memset(vm->visited.slots, 0, vm->visited.capacity * sizeof *vm->visited.slots);
        vm->visited.count = 0;
    }
    if (!lua_checkstack(log, 1)) too_large(L);
    lua_xmove(L, log, 1);
    record_table(L, log, &vm->visited, 0);
    vm->snapshot_length = lua_gettop(log);
}

void trellis_vm_forget_snapshot(trellis_vm *vm) {
    vm->snapshot_length = 0;
    if (vm->snapshot_log != NULL) lua_settop(vm->snapshot_log, 0);
}

static int restore_body(lua_State *L) {
    trellis_vm *vm = trellis_vm_of(L);
    lua_State *log = vm->snapshot_log;
    int length = (int)vm->snapshot_length;
    if (!lua_checkstack(log, 4)) return luaL_error(L, "not enough memory to roll the state back");
    for (int table = 1; table <= length;) {
        lua_pushnil(log);
        while (lua_next(log, table)) {
            lua_pop(log, 1);
            lua_pushvalue(log, -1);
            lua_pushnil(log);
            lua_rawset(log, table);
        }
        if (lua_type(log, table + 1) == LUA_TBOOLEAN) lua_pushnil(log); else lua_pushvalue(log, table + 1);
        lua_setmetatable(log, table);
        int count = (int)lua_tointeger(log, table + 2);
        for (int entry = table + 3; entry < table + 3 + 2 * count; entry += 2) {
            lua_pushvalue(log, entry);
            lua_pushvalue(log, entry + 1);
            lua_rawset(log, table);
        }
        table += 3 + 2 * count;
    }
    lua_settop(log, 0);
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
