/* The sandbox: which libraries a script sees, and the trellis table. */
#include <string.h>

#include "internal.h"

/* trellis.hash(s): the contract's stable 64-bit hash, as a Lua integer. */
static int trellis_hash(lua_State *L) {
    size_t length = 0;
    const char *text = luaL_checklstring(L, 1, &length);
    lua_pushinteger(L, (lua_Integer)trellis_stable_hash((const uint8_t *)text, length));
    return 1;
}

/* trellis.shard(id [, count]): the hash taken unsigned, modulo count (default 4096). */
static int trellis_shard(lua_State *L) {
    size_t length = 0;
    const char *text = luaL_checklstring(L, 1, &length);
    lua_Integer count = luaL_optinteger(L, 2, 4096);
    luaL_argcheck(L, count > 0, 2, "the shard count must be positive");
    uint64_t hash = trellis_stable_hash((const uint8_t *)text, length);
    lua_pushinteger(L, (lua_Integer)(hash % (uint64_t)count));
    return 1;
}

/* Longest log line handed to the node; longer ones are cut. */
#define TRELLIS_LOG_MAX 4096

/* trellis.log(...) and print(...): the arguments, as tostring shows them, joined by spaces. */
static int trellis_log(lua_State *L) {
    trellis_vm *vm = trellis_vm_of(L);
    int count = lua_gettop(L);
    luaL_Buffer buffer;
    luaL_buffinit(L, &buffer);
    for (int i = 1; i <= count; i++) {
        if (i > 1) luaL_addchar(&buffer, ' ');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&buffer);
    }
    luaL_pushresult(&buffer);
    size_t length = 0;
    const char *line = lua_tolstring(L, -1, &length);
    if (vm->log != NULL) vm->log(vm->log_context, line, length > TRELLIS_LOG_MAX ? TRELLIS_LOG_MAX : length);
    return 0;
}

/* load(chunk [, name [, mode [, env]]]) that only ever accepts text. Without env, a chunk
 * gets the script's environment: its second upvalue in a shared state, else the globals. */
static int sandbox_load(lua_State *L) {
    int given = lua_gettop(L);
    int own_env = given < 4 && lua_type(L, lua_upvalueindex(2)) == LUA_TTABLE;
    lua_settop(L, given < 4 ? 2 : 4);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushliteral(L, "t");
    if (given >= 4) lua_pushvalue(L, 4);
    else if (own_env) lua_pushvalue(L, lua_upvalueindex(2));
    lua_call(L, given >= 4 || own_env ? 4 : 3, LUA_MULTRET);
    return lua_gettop(L) - (given < 4 ? 2 : 4);
}

/* setmetatable that refuses __gc: a finalizer would run script code outside any callback. */
static int sandbox_setmetatable(lua_State *L) {
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL) return luaL_error(L, "__gc metamethods are not available in the sandbox");
        lua_pop(L, 1);
    }
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 2, 1);
    return 1;
}

/* The message handler given to xpcall, guarded: once the budget is spent it is not called.
 * An error raised from the budget hook calls the message handler while Lua has hooks turned
 * off, so a handler that loops would otherwise run without any budget. */
static int guarded_handler(lua_State *L) {
    if (trellis_vm_of(L)->budget_exhausted) return 1;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static int finish_xpcall(lua_State *L, int status, lua_KContext base) {
    (void)status;
    return lua_gettop(L) - (int)base;
}

/* xpcall(f, handler, ...) with the handler guarded. */
static int sandbox_xpcall(lua_State *L) {
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, guarded_handler, 1);
    lua_replace(L, 2);
    int count = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_callk(L, count, LUA_MULTRET, 0, finish_xpcall);
    return finish_xpcall(L, LUA_OK, 0);
}

static void wrap_global(lua_State *L, const char *name, lua_CFunction wrapper) {
    lua_getglobal(L, name);
    lua_pushcclosure(L, wrapper, 1);
    lua_setglobal(L, name);
}

static void remove_field(lua_State *L, const char *table, const char *name) {
    lua_getglobal(L, table);
    lua_pushnil(L);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
}

/* Seeds the math library whose table is on top of the stack. */
static void seed_math(lua_State *L, int64_t seed) {
    lua_getfield(L, -1, "randomseed");
    lua_pushinteger(L, (lua_Integer)seed);
    lua_call(L, 1, 0);
}

/* No script and no state yet. */
static void clear_script(lua_State *L, trellis_vm *vm) {
    lua_pushboolean(L, 0);
    lua_rawseti(L, LUA_REGISTRYINDEX, trellis_key(vm, TRELLIS_KEY_SCRIPT));
    lua_pushboolean(L, 0);
    lua_rawseti(L, LUA_REGISTRYINDEX, trellis_key(vm, TRELLIS_KEY_STATE));
    vm->state_identity = NULL;
}

static int open_body(lua_State *L) {
    int64_t seed = *(const int64_t *)lua_touserdata(L, 1);
    static const luaL_Reg libraries[] = {
        {LUA_GNAME, luaopen_base},         {LUA_COLIBNAME, luaopen_coroutine}, {LUA_TABLIBNAME, luaopen_table},
        {LUA_STRLIBNAME, luaopen_string},  {LUA_MATHLIBNAME, luaopen_math},    {LUA_UTF8LIBNAME, luaopen_utf8},
        {NULL, NULL},
    };
    for (const luaL_Reg *lib = libraries; lib->func != NULL; lib++) {
        luaL_requiref(L, lib->name, lib->func, 1);
        lua_pop(L, 1);
    }
    static const char *const removed[] = {"dofile", "loadfile", "collectgarbage", "warn", NULL};
    for (const char *const *name = removed; *name != NULL; name++) remove_field(L, LUA_GNAME, *name);
    remove_field(L, LUA_STRLIBNAME, "dump");
    wrap_global(L, "load", sandbox_load);
    wrap_global(L, "setmetatable", sandbox_setmetatable);
    wrap_global(L, "xpcall", sandbox_xpcall);

    static const luaL_Reg trellis[] = {{"hash", trellis_hash}, {"shard", trellis_shard}, {"log", trellis_log}, {NULL, NULL}};
    luaL_newlib(L, trellis);
    lua_setglobal(L, "trellis");
    lua_pushcfunction(L, trellis_log);
    lua_setglobal(L, "print");

    lua_getglobal(L, LUA_MATHLIBNAME);
    seed_math(L, seed);
    clear_script(L, trellis_vm_of(L));

    lua_pop(L, 1);
    return 0;
}

/* A VM in a shared state gets an environment of its own: the state's globals (opened by the
 * first VM) copied into a new table, with its own math library (its own random generator,
 * seeded here), its own _G and a load that defaults to this environment. The libraries'
 * other tables (string, table, utf8, coroutine, trellis) are shared. */
static int open_shared_body(lua_State *L) {
    int64_t seed = *(const int64_t *)lua_touserdata(L, 1);
    trellis_vm *vm = trellis_vm_of(L);
    lua_settop(L, 0);
    lua_newtable(L);
    lua_pushglobaltable(L);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, 1);
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, luaopen_math);
    lua_call(L, 0, 1);
    seed_math(L, seed);
    lua_setfield(L, 1, LUA_MATHLIBNAME);
    lua_pushvalue(L, 1);
    lua_setfield(L, 1, LUA_GNAME);
    lua_getfield(L, 1, "load");
    lua_getupvalue(L, -1, 1);
    lua_pushvalue(L, 1);
    lua_pushcclosure(L, sandbox_load, 2);
    lua_setfield(L, 1, "load");
    lua_pop(L, 1);
    lua_rawseti(L, LUA_REGISTRYINDEX, trellis_key(vm, TRELLIS_KEY_ENV));
    lua_pushnil(L);
    lua_rawseti(L, LUA_REGISTRYINDEX, trellis_key(vm, TRELLIS_KEY_KEYED));
    clear_script(L, vm);
    return 0;
}

int trellis_vm_open_sandbox(trellis_vm *vm, int64_t random_seed) {
    lua_State *L = vm->L;
    lua_settop(L, 0);
    lua_pushcfunction(L, trellis_is_shared(vm) ? open_shared_body : open_body);
    lua_pushlightuserdata(L, &random_seed);
    trellis_arm_budget(vm, INT64_MAX);
    return lua_pcall(L, 1, 0, 0);
}
