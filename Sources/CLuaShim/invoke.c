/* Running scripts: loading the chunk, calling callbacks with their arguments, keeping state. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Deepest value nesting accepted in arguments (the encoder's values are shallower). */
#define TRELLIS_MAX_ARG_DEPTH 64

static uint64_t read_big_endian(lua_State *L, const uint8_t **cursor, const uint8_t *end, int bytes) {
    if (end - *cursor < bytes) luaL_error(L, "truncated argument encoding");
    uint64_t value = 0;
    for (int i = 0; i < bytes; i++) value = (value << 8) | (*cursor)[i];
    *cursor += bytes;
    return value;
}

static void push_bytes(lua_State *L, const uint8_t **cursor, const uint8_t *end, uint64_t length) {
    if ((uint64_t)(end - *cursor) < length) luaL_error(L, "truncated argument encoding");
    lua_pushlstring(L, (const char *)*cursor, (size_t)length);
    *cursor += length;
}

static void push_array(lua_State *L, const uint8_t **cursor, const uint8_t *end, uint64_t count, int depth) {
    if (count > (uint64_t)(end - *cursor)) luaL_error(L, "truncated argument encoding");
    lua_createtable(L, (int)count, 0);
    for (uint64_t i = 0; i < count; i++) {
        trellis_push_msgpack(L, cursor, end, depth + 1);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

static void push_map(lua_State *L, const uint8_t **cursor, const uint8_t *end, uint64_t count, int depth) {
    if (count > (uint64_t)(end - *cursor) / 2) luaL_error(L, "truncated argument encoding");
    lua_createtable(L, 0, (int)count);
    for (uint64_t i = 0; i < count; i++) {
        trellis_push_msgpack(L, cursor, end, depth + 1);
        trellis_push_msgpack(L, cursor, end, depth + 1);
        lua_rawset(L, -3);
    }
}

void trellis_push_msgpack(lua_State *L, const uint8_t **cursor, const uint8_t *end, int depth) {
    if (depth > TRELLIS_MAX_ARG_DEPTH) luaL_error(L, "argument nested too deeply");
    luaL_checkstack(L, 4, "argument nested too deeply");
    if (*cursor >= end) luaL_error(L, "truncated argument encoding");
    uint8_t type = *(*cursor)++;
    if (type <= 0x7f) { lua_pushinteger(L, type); return; }
    if (type >= 0xe0) { lua_pushinteger(L, (int8_t)type); return; }
    if ((type & 0xf0) == 0x80) { push_map(L, cursor, end, type & 0x0f, depth); return; }
    if ((type & 0xf0) == 0x90) { push_array(L, cursor, end, type & 0x0f, depth); return; }
    if ((type & 0xe0) == 0xa0) { push_bytes(L, cursor, end, type & 0x1f); return; }
    switch (type) {
    case 0xc0: lua_pushnil(L); return;
    case 0xc2: lua_pushboolean(L, 0); return;
    case 0xc3: lua_pushboolean(L, 1); return;
    case 0xc4: case 0xd9: push_bytes(L, cursor, end, read_big_endian(L, cursor, end, 1)); return;
    case 0xc5: case 0xda: push_bytes(L, cursor, end, read_big_endian(L, cursor, end, 2)); return;
    case 0xc6: case 0xdb: push_bytes(L, cursor, end, read_big_endian(L, cursor, end, 4)); return;
    case 0xca: {
        uint32_t bits = (uint32_t)read_big_endian(L, cursor, end, 4);
        float value;
        memcpy(&value, &bits, sizeof value);
        lua_pushnumber(L, value);
        return;
    }
    case 0xcb: {
        uint64_t bits = read_big_endian(L, cursor, end, 8);
        double value;
        memcpy(&value, &bits, sizeof value);
        lua_pushnumber(L, value);
        return;
    }
    case 0xcc: lua_pushinteger(L, (lua_Integer)read_big_endian(L, cursor, end, 1)); return;
    case 0xcd: lua_pushinteger(L, (lua_Integer)read_big_endian(L, cursor, end, 2)); return;
    case 0xce: lua_pushinteger(L, (lua_Integer)read_big_endian(L, cursor, end, 4)); return;
    case 0xcf: {
        uint64_t value = read_big_endian(L, cursor, end, 8);
        if (value > (uint64_t)LUA_MAXINTEGER) luaL_error(L, "argument integer out of range");
        lua_pushinteger(L, (lua_Integer)value);
        return;
    }
    case 0xd0: lua_pushinteger(L, (int8_t)read_big_endian(L, cursor, end, 1)); return;
    case 0xd1: lua_pushinteger(L, (int16_t)read_big_endian(L, cursor, end, 2)); return;
    case 0xd2: lua_pushinteger(L, (int32_t)read_big_endian(L, cursor, end, 4)); return;
    case 0xd3: lua_pushinteger(L, (lua_Integer)(int64_t)read_big_endian(L, cursor, end, 8)); return;
    case 0xdc: push_array(L, cursor, end, read_big_endian(L, cursor, end, 2), depth); return;
    case 0xdd: push_array(L, cursor, end, read_big_endian(L, cursor, end, 4), depth); return;
    case 0xde: push_map(L, cursor, end, read_big_endian(L, cursor, end, 2), depth); return;
    case 0xdf: push_map(L, cursor, end, read_big_endian(L, cursor, end, 4), depth); return;
    default: luaL_error(L, "unsupported argument type byte 0x%02x", type);
    }
}

/* Moves the message handler at index 1 out of the way, leaving what the call left. */
static int finish_call(lua_State *L, int status) {
    lua_remove(L, 1);
    return status;
}

static int store_body(lua_State *L) {
    lua_settop(L, 2);
    lua_rawseti(L, LUA_REGISTRYINDEX, lua_tointeger(L, 1));
    return 0;
}

static int store(trellis_vm *vm, lua_Integer slot, int index) {
    lua_State *L = vm->L;
    trellis_enter(vm);
    if (!lua_checkstack(L, 3)) return TRELLIS_ERRMEM;
    index = lua_absindex(L, index);
    lua_pushcfunction(L, store_body);
    lua_pushinteger(L, slot);
    lua_pushvalue(L, index);
    return lua_pcall(L, 2, 0, 0);
}

int trellis_vm_store_state(trellis_vm *vm, int index) {
    /* Most callbacks return the state table they were given: it is stored already. */
    const void *identity = lua_topointer(vm->L, index);
    if (identity == NULL || identity != vm->state_identity) {
        int status = store(vm, trellis_key(vm, TRELLIS_KEY_STATE), index);
        if (status != LUA_OK) return status;
        vm->state_identity = identity;
    }
    vm->snapshot_taken = 0;
    return LUA_OK;
}

int trellis_vm_push_state(trellis_vm *vm) {
    lua_State *L = vm->L;
    lua_settop(L, 0);
    if (!lua_checkstack(L, 1)) return LUA_TNONE;
    return lua_rawgeti(L, LUA_REGISTRYINDEX, trellis_key(vm, TRELLIS_KEY_STATE));
}

/* The wrapper that lets many VMs of one state run one compiled script: the script's text
 * becomes the body of a function whose first parameter is _ENV, so each call runs the script
 * anew (fresh locals and closures) against the environment it is given. The text starts on
 * the wrapper's first line, so line numbers stay those of the file. */
static const char wrapper_head[] = "return function(_ENV, ...) ";
static const char wrapper_tail[] = "\nend";

struct compile_params {
    const char *source;
    size_t length;
    const char *chunk_name;
    char *wrapped;
    /* What compiling reported when it failed (a syntax error, or no memory). */
    int load_status;
};

/* Pushes the host's compiled wrapper of the source, compiling it on first use (the cache is
 * keyed by chunk name and text, so errors name the right file). The text is first compiled
 * as it is, so that a syntax error reads as it would in a VM of its own. */
static int compile_body(lua_State *L) {
    struct compile_params *params = lua_touserdata(L, 1);
    lua_settop(L, 0);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &trellis_compiled_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &trellis_compiled_key);
    }
    lua_pushstring(L, params->chunk_name);
    lua_pushliteral(L, "\n");
    lua_pushlstring(L, params->source, params->length);
    lua_concat(L, 3);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, 1) == LUA_TFUNCTION) return 1;
    lua_pop(L, 1);
    if ((params->load_status = luaL_loadbufferx(L, params->source, params->length, params->chunk_name, "t")) != LUA_OK) {
        return lua_error(L);
    }
    lua_pop(L, 1);
    size_t head = sizeof wrapper_head - 1, tail = sizeof wrapper_tail - 1;
    params->wrapped = malloc(head + params->length + tail);
    if (params->wrapped == NULL) return luaL_error(L, "not enough memory to compile the script");
    memcpy(params->wrapped, wrapper_head, head);
    memcpy(params->wrapped + head, params->source, params->length);
    memcpy(params->wrapped + head + params->length, wrapper_tail, tail);
    if ((params->load_status = luaL_loadbufferx(L, params->wrapped, head + params->length + tail, params->chunk_name, "t")) != LUA_OK) {
        return lua_error(L);
    }
    lua_call(L, 0, 1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, 1);
    return 1;
}

/* Leaves at index 1 the function that runs the script: its chunk, or for a VM that shares
 * its state, the host's compiled wrapper and the VM's environment above it. */
static int push_chunk(trellis_vm *vm, const char *source, size_t length, const char *chunk_name) {
    lua_State *L = vm->L;
    if (!trellis_is_shared(vm)) return luaL_loadbufferx(L, source, length, chunk_name, "t");
    lua_State *main = vm->host->L;
    if (!lua_checkstack(main, 2)) return TRELLIS_ERRMEM;
    struct compile_params params = {source, length, chunk_name, NULL, LUA_OK};
    trellis_enter(vm->host->first);
    lua_pushcfunction(main, compile_body);
    lua_pushlightuserdata(main, &params);
    int status = lua_pcall(main, 1, 1, 0);
    free(params.wrapped);
    trellis_enter(vm);
    lua_xmove(main, L, 1);
    if (status != LUA_OK) return params.load_status != LUA_OK ? params.load_status : status;
    lua_rawgeti(L, LUA_REGISTRYINDEX, trellis_key(vm, TRELLIS_KEY_ENV));
    return LUA_OK;
}

int trellis_vm_load_script(trellis_vm *vm, const char *source, size_t length, const char *chunk_name,
                           int64_t instruction_budget) {
    lua_State *L = vm->L;
    lua_settop(L, 0);
    trellis_arm_budget(vm, instruction_budget);
    if (!lua_checkstack(L, 4)) return TRELLIS_ERRMEM;
    lua_pushcfunction(L, trellis_message_handler);
    int status = push_chunk(vm, source, length, chunk_name);
    if (status != LUA_OK) return finish_call(L, status);
    status = lua_pcall(L, lua_gettop(L) - 2, 1, 1);
    if (status == LUA_OK && vm->budget_exhausted) status = LUA_ERRRUN;
    finish_call(L, status);
    if (status == LUA_OK && lua_type(L, 1) == LUA_TTABLE) status = store(vm, trellis_key(vm, TRELLIS_KEY_SCRIPT), 1);
    return status;
}

struct invoke_params {
    const char *callback;
    int pass_state;
    const char *state_key;
    size_t state_key_length;
    const uint8_t *args;
    size_t args_length;
    int nresults;
};

/* Pushes the table of keyed states (one per actor id), creating it on first use. */
static void push_keyed_states(lua_State *L) {
    lua_Integer slot = trellis_key(trellis_vm_of(L), TRELLIS_KEY_KEYED);
    if (lua_rawgeti(L, LUA_REGISTRYINDEX, slot) == LUA_TTABLE) return;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawseti(L, LUA_REGISTRYINDEX, slot);
}

static int invoke_body(lua_State *L) {
    const struct invoke_params *params = lua_touserdata(L, 1);
    lua_settop(L, 0);
    trellis_vm *vm = trellis_vm_of(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, trellis_key(vm, TRELLIS_KEY_SCRIPT));
    if (lua_type(L, 1) != LUA_TTABLE) return luaL_error(L, "no script is loaded");
    lua_pushstring(L, params->callback);
    if (lua_rawget(L, 1) != LUA_TFUNCTION) {
        return luaL_error(L, "the script has no function '%s'", params->callback);
    }
    lua_remove(L, 1);
    if (params->pass_state) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, trellis_key(vm, TRELLIS_KEY_STATE));
        trellis_snapshot_state(vm, L, -1);
    }
    if (params->state_key) {
        push_keyed_states(L);
        lua_pushlstring(L, params->state_key, params->state_key_length);
        lua_rawget(L, -2);
        lua_remove(L, -2);
    }
    const uint8_t *cursor = params->args;
    const uint8_t *end = params->args + params->args_length;
    if (cursor < end) {
        uint8_t type = *cursor;
        uint64_t count;
        if ((type & 0xf0) == 0x90) { count = type & 0x0f; cursor++; }
        else if (type == 0xdc) { cursor++; count = read_big_endian(L, &cursor, end, 2); }
        else return luaL_error(L, "arguments must be encoded as an array");
        for (uint64_t i = 0; i < count; i++) trellis_push_msgpack(L, &cursor, end, 1);
    }
    lua_call(L, lua_gettop(L) - 1, params->nresults);
    return params->nresults;
}

/* Runs invoke_body protected, under the budget. */
static int run_invoke(trellis_vm *vm, struct invoke_params params, int64_t instruction_budget) {
    lua_State *L = vm->L;
    lua_settop(L, 0);
    vm->snapshot_taken = 0;
    trellis_arm_budget(vm, instruction_budget);
    lua_pushcfunction(L, trellis_message_handler);
    lua_pushcfunction(L, invoke_body);
    lua_pushlightuserdata(L, &params);
    int status = lua_pcall(L, 1, params.nresults, 1);
    if (status == LUA_OK && vm->budget_exhausted) status = LUA_ERRRUN;
    if (status != LUA_OK) trellis_vm_restore_state(vm);
    return finish_call(L, status);
}

int trellis_vm_invoke(trellis_vm *vm, const char *callback, int pass_state, const uint8_t *args, size_t args_length,
                      int nresults, int64_t instruction_budget) {
    struct invoke_params params = {callback, pass_state, NULL, 0, args, args_length, nresults};
    return run_invoke(vm, params, instruction_budget);
}

int trellis_vm_invoke_keyed(trellis_vm *vm, const char *callback, const char *key, size_t key_length,
                            const uint8_t *args, size_t args_length, int nresults, int64_t instruction_budget) {
    struct invoke_params params = {callback, 0, key, key_length, args, args_length, nresults};
    return run_invoke(vm, params, instruction_budget);
}

struct keyed_store_params {
    const char *key;
    size_t key_length;
};

/* states[key] = the second argument (nil drops the entry). */
static int store_keyed_body(lua_State *L) {
    const struct keyed_store_params *params = lua_touserdata(L, 1);
    push_keyed_states(L);
    lua_pushlstring(L, params->key, params->key_length);
    lua_pushvalue(L, 2);
    lua_rawset(L, -3);
    return 0;
}

/* Stores the value at index under key; index 0 stores nil. */
static int store_keyed(trellis_vm *vm, const char *key, size_t key_length, int index) {
    lua_State *L = vm->L;
    trellis_enter(vm);
    if (!lua_checkstack(L, 4)) return TRELLIS_ERRMEM;
    if (index != 0) index = lua_absindex(L, index);
    struct keyed_store_params params = {key, key_length};
    lua_pushcfunction(L, store_keyed_body);
    lua_pushlightuserdata(L, &params);
    if (index == 0) lua_pushnil(L); else lua_pushvalue(L, index);
    int status = lua_pcall(L, 2, 0, 0);
    if (status != LUA_OK) lua_pop(L, 1);
    return status;
}

int trellis_vm_store_keyed(trellis_vm *vm, const char *key, size_t key_length, int index) {
    return store_keyed(vm, key, key_length, index);
}

int trellis_vm_drop_keyed(trellis_vm *vm, const char *key, size_t key_length) {
    return store_keyed(vm, key, key_length, 0);
}
