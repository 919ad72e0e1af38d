/* Rolling a failed callback back. A callback gets the stored state itself and may change its
 * tables in place; before it runs, every table reachable from the state (through keys and
 * values) is recorded in a log: the table, its metatable and its entries. When the callback
 * fails, or returns the wrong shape, each recorded table gets exactly its recorded entries and
 * metatable back, so the state is as it was, sharing and cycles included.
 *
 * The log is kept on the stacks of Lua threads that never run (anchored in the registry):
 * recording an entry is a push, with no table to grow or look up, and the log is dropped by
 * emptying the stacks. Per table it holds the table, its metatable (false for none), its
 * number of entries, then each entry as a key and a value. A table with more entries than
 * TRELLIS_BIG_TABLE is recorded as a copy instead (count -1, then the copy), and a thread
 * takes TRELLIS_LOG_SLOTS slots before the log goes on in the next one, so a state of any
 * size fits. Which tables are recorded already is kept in a C set of their addresses. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Deepest table nesting in a script's state. */
#define TRELLIS_MAX_STATE_DEPTH 200
/* Slots the visited set starts with (a typical state holds a few dozen tables). */
#define TRELLIS_VISITED_INITIAL 64
/* Entries up to which a table is recorded entry by entry. */
#define TRELLIS_BIG_TABLE 4096
/* Slots one log thread takes before the log goes on in the next (Lua allows 1,000,000). */
#define TRELLIS_LOG_SLOTS 400000
/* The most slots one table's record takes: table, metatable, count and entries, or a copy. */
#define RECORD_SLOTS (3 + 2 * TRELLIS_BIG_TABLE)

static int out_of_memory(lua_State *L) { return luaL_error(L, "not enough memory to record the state for rollback"); }

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
        if (grown.slots == NULL) return out_of_memory(L);
        for (size_t slot = 0; slot < set->capacity; slot++) {
            if (set->slots[slot] != NULL) visited_insert(&grown, set->slots[slot]);
        }
        free(set->slots);
        *set = grown;
    }
    visited_insert(set, table);
    return 1;
}

void trellis_log_release(trellis_vm *vm) {
    free(vm->host->visited.slots);
    memset(&vm->host->visited, 0, sizeof vm->host->visited);
    free(vm->host->logs);
    vm->host->logs = NULL;
    vm->host->log_count = vm->host->logs_used = 0;
}

/* The log thread to start a record in: the current one, or the next (made on first use)
 * once the current one has taken its share. A record takes at most RECORD_SLOTS, so it
 * always fits under Lua's own limit; the stack grows as entries are pushed. */
static lua_State *log_for_record(lua_State *L, trellis_vm *vm) {
    if (vm->host->logs_used > 0) {
        lua_State *log = vm->host->logs[vm->host->logs_used - 1];
        if (lua_gettop(log) + RECORD_SLOTS <= TRELLIS_LOG_SLOTS) {
            if (!lua_checkstack(log, 8)) out_of_memory(L);
            return log;
        }
    }
    if (vm->host->logs_used == vm->host->log_count) {
        lua_State **grown = realloc(vm->host->logs, (size_t)(vm->host->log_count + 1) * sizeof *grown);
        if (grown == NULL) out_of_memory(L);
        vm->host->logs = grown;
        if (lua_rawgeti(L, LUA_REGISTRYINDEX, trellis_key(vm->host->first, TRELLIS_KEY_LOG)) != LUA_TTABLE) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushvalue(L, -1);
            lua_rawseti(L, LUA_REGISTRYINDEX, trellis_key(vm->host->first, TRELLIS_KEY_LOG));
        }
        vm->host->logs[vm->host->log_count] = lua_newthread(L);
        lua_rawseti(L, -2, vm->host->log_count + 1);
        lua_pop(L, 1);
        vm->host->log_count++;
    }
    lua_State *log = vm->host->logs[vm->host->logs_used++];
    lua_settop(log, 0);
    if (!lua_checkstack(log, 8)) out_of_memory(L);
    return log;
}

static void record(lua_State *L, trellis_vm *vm, lua_State *from, int index, int depth);

/* Records a copy of the big table at `table` on log (its metatable above it), whose count
 * slot says -1, then the tables its entries hold (walked on L, which runs no code meanwhile). */
static void record_copy(lua_State *L, trellis_vm *vm, lua_State *log, int table, int depth) {
    if (!lua_checkstack(log, 6)) out_of_memory(L);
    lua_pushinteger(log, -1);
    lua_replace(log, table + 2);
    lua_newtable(log);
    int copy = table + 3;
    lua_pushnil(log);
    while (lua_next(log, table)) {
        lua_pushvalue(log, -2);
        lua_insert(log, -2);
        lua_rawset(log, copy);
    }
    if (!lua_checkstack(L, 4)) out_of_memory(L);
    lua_pushvalue(log, copy);
    lua_xmove(log, L, 1);
    int walked = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, walked)) {
        if (lua_type(L, -2) == LUA_TTABLE) record(L, vm, L, lua_gettop(L) - 1, depth + 1);
        if (lua_type(L, -1) == LUA_TTABLE) record(L, vm, L, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* Records the table at `index` of thread `from` unless it is recorded already, then the
 * tables its keys and values hold. */
static void record(lua_State *L, trellis_vm *vm, lua_State *from, int index, int depth) {
    if (depth > TRELLIS_MAX_STATE_DEPTH) luaL_error(L, "the state is nested deeper than %d levels", TRELLIS_MAX_STATE_DEPTH);
    if (!visit(L, &vm->host->visited, lua_topointer(from, index))) return;
    if (!lua_checkstack(from, 1)) out_of_memory(L);
    lua_State *log = log_for_record(L, vm);
    lua_pushvalue(from, index);
    lua_xmove(from, log, 1);
    int table = lua_gettop(log);
    if (!lua_getmetatable(log, table)) lua_pushboolean(log, 0);
    lua_pushinteger(log, 0);
    int count = 0;
    lua_pushnil(log);
    while (lua_next(log, table)) {
        if (count == TRELLIS_BIG_TABLE) {
            lua_settop(log, table + 2);
            record_copy(L, vm, log, table, depth);
            return;
        }
        if (!lua_checkstack(log, 3)) out_of_memory(L);
        lua_pushvalue(log, -2);
        count++;
    }
    lua_pushinteger(log, count);
    lua_replace(log, table + 2);
    for (int slot = table + 3; slot <= table + 2 + 2 * count; slot++) {
        if (lua_type(log, slot) == LUA_TTABLE) record(L, vm, log, slot, depth + 1);
    }
}

/* Empties the log threads the last snapshot used. */
static void clear_logs(trellis_vm *vm) {
    for (int i = 0; i < vm->host->logs_used; i++) lua_settop(vm->host->logs[i], 0);
    vm->host->logs_used = 0;
}

void trellis_snapshot_state(trellis_vm *vm, lua_State *L, int state) {
    vm->snapshot_taken = 0;
    clear_logs(vm);
    vm->host->log_owner = vm;
    if (vm->host->visited.count > 0) {
        memset(vm->host->visited.slots, 0, vm->host->visited.capacity * sizeof *vm->host->visited.slots);
        vm->host->visited.count = 0;
    }
    if (lua_type(L, state) == LUA_TTABLE) record(L, vm, L, lua_absindex(L, state), 0);
    vm->snapshot_taken = 1;
}

void trellis_vm_forget_snapshot(trellis_vm *vm) {
    vm->snapshot_taken = 0;
    if (vm->host->log_owner == vm) clear_logs(vm);
}

/* Gives the table at `table` of log exactly the entries of the copy at `copy`. */
static void restore_from_copy(lua_State *log, int table, int copy) {
    lua_pushnil(log);
    while (lua_next(log, copy)) {
        lua_pushvalue(log, -2);
        lua_insert(log, -2);
        lua_rawset(log, table);
    }
}

static int restore_body(lua_State *L) {
    trellis_vm *vm = trellis_vm_of(L);
    for (int i = 0; i < vm->host->logs_used; i++) {
        lua_State *log = vm->host->logs[i];
        int length = lua_gettop(log);
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
            if (count < 0) {
                restore_from_copy(log, table, table + 3);
                table += 4;
                continue;
            }
            for (int entry = table + 3; entry < table + 3 + 2 * count; entry += 2) {
                lua_pushvalue(log, entry);
                lua_pushvalue(log, entry + 1);
                lua_rawset(log, table);
            }
            table += 3 + 2 * count;
        }
    }
    clear_logs(vm);
    return 0;
}

/* Restoring puts back entries the tables held before the call, which may need the memory
 * they had then: the cap is lifted meanwhile, as the state fitted under it before. */
int trellis_vm_restore_state(trellis_vm *vm) {
    if (vm->snapshot_taken == 0 || vm->host->log_owner != vm) return TRELLIS_OK;
    lua_State *L = vm->L;
    trellis_enter(vm);
    if (!lua_checkstack(L, 1)) return TRELLIS_ERRMEM;
    size_t cap = vm->memory_cap;
    vm->memory_cap = SIZE_MAX;
    lua_pushcfunction(L, restore_body);
    int status = lua_pcall(L, 0, 0, 0);
    vm->memory_cap = cap;
    if (status != LUA_OK) lua_pop(L, 1);
    vm->snapshot_taken = 0;
    return status;
}
