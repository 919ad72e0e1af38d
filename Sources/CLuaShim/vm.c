/* The VM's lifecycle, its memory cap, its instruction budget and the plain stack reads. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

const char trellis_compiled_key = 'c';

/* Every allocation of the state goes through here and is charged to the VM that runs; a
 * block freed or moved is credited to its owner. Growing past the running VM's cap fails,
 * which Lua turns into a "not enough memory" error after an emergency collection. Each
 * refusal costs a tenth of the budget: a script that catches memory errors and retries would
 * otherwise force a full collection per attempt, for as long as it liked. */
static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    struct trellis_host *host = ud;
    trellis_vm *vm = host->current;
    /* A state of its own has one VM, the owner of every block: only a shared state looks the
     * owner up (a read of the block's page or header, on every free of a real node else). */
    trellis_vm *owner = ptr != NULL && host->shared ? trellis_pool_owner(ptr, osize) : vm;
    if (nsize == 0) {
        if (ptr != NULL) {
            trellis_pool_give_back(owner, ptr, osize);
            owner->memory_used -= osize;
        }
        return NULL;
    }
    size_t old = ptr != NULL && owner == vm ? osize : 0;
    if (nsize > old && vm->memory_used - old + nsize > vm->memory_cap) {
        vm->memory_refusals++;
        vm->instructions += vm->budget / 10 + 1;
        return NULL;
    }
    void *block;
    if (ptr == NULL || owner == vm) {
        block = ptr == NULL ? trellis_pool_take(vm, nsize) : trellis_pool_resize(vm, ptr, osize, nsize);
        if (block == NULL) return NULL;
    } else {
        block = trellis_pool_take(vm, nsize);
        if (block == NULL) return NULL;
        memcpy(block, ptr, osize < nsize ? osize : nsize);
        trellis_pool_give_back(owner, ptr, osize);
        owner->memory_used -= osize;
    }
    vm->memory_used = vm->memory_used - old + nsize;
    if (vm->memory_used > vm->memory_peak) vm->memory_peak = vm->memory_used;
    return block;
}

trellis_vm *trellis_vm_of(lua_State *L) {
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return ((struct trellis_host *)ud)->current;
}

/* Runs every TRELLIS_HOOK_STEP instructions, on every thread of the VM (coroutines inherit
 * the hook). Once the budget is spent it fires on every instruction of the thread, so a
 * script that catches the error with pcall cannot run on. */
static void budget_hook(lua_State *L, lua_Debug *ar) {
    trellis_vm *vm = trellis_vm_of(L);
    if (lua_getinfo(L, "l", ar) && ar->currentline > 0) vm->last_line = ar->currentline;
    if (!vm->budget_exhausted) {
        vm->instructions += lua_gethookcount(L);
        if (vm->instructions < vm->budget) return;
        vm->budget_exhausted = 1;
    }
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
    lua_getinfo(L, "Sl", ar);
    if (ar->currentline > 0) vm->error_line = ar->currentline;
    luaL_error(L, "%s:%d: instruction budget of %I exhausted", ar->short_src, ar->currentline,
               (LUAI_UACINT)vm->budget);
}

void trellis_arm_budget(trellis_vm *vm, int64_t budget) {
    vm->budget = budget > 0 ? budget : 1;
    vm->instructions = 0;
    vm->budget_exhausted = 0;
    vm->memory_refusals = 0;
    vm->error_line = 0;
    vm->last_line = 0;
    int step = vm->budget < TRELLIS_HOOK_STEP ? (int)vm->budget : TRELLIS_HOOK_STEP;
    trellis_enter(vm);
    lua_sethook(vm->L, budget_hook, LUA_MASKCOUNT, step);
}

int trellis_message_handler(lua_State *L) {
    trellis_vm *vm = trellis_vm_of(L);
    lua_Debug ar;
    for (int level = 0; vm->error_line == 0 && lua_getstack(L, level, &ar); level++) {
        if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) vm->error_line = ar.currentline;
    }
    if (lua_type(L, 1) != LUA_TSTRING && lua_type(L, 1) != LUA_TNUMBER) {
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    return 1;
}

static trellis_vm *vm_alloc(struct trellis_host *host, size_t memory_cap, trellis_log_fn log, void *log_context) {
    trellis_vm *vm = calloc(1, sizeof *vm);
    if (vm == NULL) return NULL;
    vm->host = host;
    vm->number = host->vm_count++;
    vm->memory_cap = memory_cap;
    vm->log = log;
    vm->log_context = log_context;
    vm->budget = 1;
    return vm;
}

/* Frees a VM's C memory, once none of its blocks can be alive. */
static void vm_free(trellis_vm *vm) {
    trellis_pool_release(&vm->pool);
    free(vm);
}

trellis_vm *trellis_vm_new(size_t memory_cap, trellis_log_fn log, void *log_context) {
    struct trellis_host *host = calloc(1, sizeof *host);
    if (host == NULL) return NULL;
    trellis_vm *vm = vm_alloc(host, memory_cap, log, log_context);
    if (vm == NULL) {
        free(host);
        return NULL;
    }
    host->first = host->current = vm;
    vm->L = host->L = lua_newstate(capped_alloc, host);
    if (vm->L == NULL) {
        vm_free(vm);
        free(host);
        return NULL;
    }
    /* Each callback leaves short-lived garbage (messages, member lists, replaced entries) next to
     * a long-lived script: the generational collector is made for that. */
    lua_gc(vm->L, LUA_GCGEN, 0, 0);
    return vm;
}

/* A closed VM of the host made new: its pages, and what of its blocks is still alive (garbage
 * the collector has not reached yet, strings others use), go to the VM that takes it over, and
 * so do its registry slots. So a simulation whose nodes stop and start again reuses their
 * memory instead of growing. */
static trellis_vm *reuse_retired(struct trellis_host *host, size_t memory_cap, trellis_log_fn log, void *log_context) {
    trellis_vm *vm = host->retired;
    if (vm == NULL) return NULL;
    host->retired = vm->next_retired;
    struct trellis_pool pool = vm->pool;
    size_t memory_used = vm->memory_used;
    int number = vm->number;
    memset(vm, 0, sizeof *vm);
    vm->host = host;
    vm->number = number;
    vm->pool = pool;
    vm->memory_used = vm->memory_peak = memory_used;
    vm->memory_cap = memory_cap;
    vm->log = log;
    vm->log_context = log_context;
    vm->budget = 1;
    return vm;
}

trellis_vm *trellis_vm_new_sharing(trellis_vm *first, size_t memory_cap, trellis_log_fn log, void *log_context) {
    struct trellis_host *host = first->host;
    trellis_vm *vm = reuse_retired(host, memory_cap, log, log_context);
    if (vm == NULL) vm = vm_alloc(host, memory_cap, log, log_context);
    if (vm == NULL) return NULL;
    host->shared = 1;
    /* The VMs of a state take turns on its main thread: a thread of its own per VM would be
     * one more cold object for every callback to touch, and for every collection to walk. */
    vm->L = host->L;
    return vm;
}

static int forget_body(lua_State *L) {
    trellis_vm *vm = lua_touserdata(L, 1);
    for (int key = 0; key < TRELLIS_KEY_COUNT; key++) {
        lua_pushnil(L);
        lua_rawseti(L, LUA_REGISTRYINDEX, trellis_key(vm, key));
    }
    return 0;
}

/* Closes a VM that shares its state: its registry values become garbage, and its struct (the
 * owner of blocks still alive) waits for the next VM made on the state, or for the state to
 * close. */
static void retire(trellis_vm *vm) {
    struct trellis_host *host = vm->host;
    lua_sethook(vm->L, NULL, 0, 0);
    trellis_enter(vm);
    if (lua_checkstack(host->L, 2)) {
        lua_pushcfunction(host->L, forget_body);
        lua_pushlightuserdata(host->L, vm);
        if (lua_pcall(host->L, 1, 0, 0) != LUA_OK) lua_pop(host->L, 1);
    }
    trellis_enter(host->first);
    if (host->log_owner == vm) host->log_owner = NULL;
    vm->next_retired = host->retired;
    host->retired = vm;
}

void trellis_vm_close(trellis_vm *vm) {
    if (vm == NULL) return;
    struct trellis_host *host = vm->host;
    if (vm != host->first) {
        retire(vm);
        return;
    }
    lua_sethook(vm->L, NULL, 0, 0);
    trellis_enter(vm);
    lua_close(vm->L);
    while (host->retired != NULL) {
        trellis_vm *retired = host->retired;
        host->retired = retired->next_retired;
        vm_free(retired);
    }
    trellis_log_release(vm);
    trellis_encoder_release(vm);
    vm_free(vm);
    free(host);
}

size_t trellis_vm_memory_used(const trellis_vm *vm) { return vm->memory_used; }
size_t trellis_vm_memory_peak(const trellis_vm *vm) { return vm->memory_peak; }
int trellis_vm_budget_exhausted(const trellis_vm *vm) { return vm->budget_exhausted; }
int trellis_vm_error_line(const trellis_vm *vm) { return vm->error_line > 0 ? vm->error_line : vm->last_line; }
int trellis_vm_memory_refused(const trellis_vm *vm) { return vm->memory_refusals > 0; }

static int collect_body(lua_State *L) {
    lua_gc(L, LUA_GCCOLLECT);
    return 0;
}

int trellis_vm_collect(trellis_vm *vm) {
    /* In a shared state a full collection would walk every VM's objects; a VM short of
     * memory gets the emergency collection Lua runs before refusing an allocation. */
    if (trellis_is_shared(vm)) return TRELLIS_OK;
    trellis_enter(vm);
    if (!lua_checkstack(vm->L, 1)) return TRELLIS_ERRMEM;
    lua_pushcfunction(vm->L, collect_body);
    return lua_pcall(vm->L, 0, 0, 0);
}

int trellis_top(trellis_vm *vm) { return lua_gettop(vm->L); }
void trellis_settop(trellis_vm *vm, int index) { lua_settop(vm->L, index); }
int trellis_type(trellis_vm *vm, int index) { return lua_type(vm->L, index); }
const char *trellis_type_name(trellis_vm *vm, int type) { return lua_typename(vm->L, type); }
int trellis_is_integer(trellis_vm *vm, int index) { return lua_isinteger(vm->L, index); }
int64_t trellis_to_integer(trellis_vm *vm, int index) { return (int64_t)lua_tointegerx(vm->L, index, NULL); }
double trellis_to_number(trellis_vm *vm, int index) { return (double)lua_tonumberx(vm->L, index, NULL); }
int trellis_to_boolean(trellis_vm *vm, int index) { return lua_toboolean(vm->L, index); }
uint64_t trellis_raw_length(trellis_vm *vm, int index) { return (uint64_t)lua_rawlen(vm->L, index); }
const void *trellis_to_pointer(trellis_vm *vm, int index) { return lua_topointer(vm->L, index); }

const char *trellis_to_string(trellis_vm *vm, int index, size_t *length) {
    if (lua_type(vm->L, index) != LUA_TSTRING) return NULL;
    return lua_tolstring(vm->L, index, length);
}

int trellis_push_nil(trellis_vm *vm) {
    if (!lua_checkstack(vm->L, 1)) return -1;
    lua_pushnil(vm->L);
    return 1;
}

int trellis_next(trellis_vm *vm, int table_index) {
    if (!lua_checkstack(vm->L, 2)) return -1;
    return lua_next(vm->L, table_index);
}

uint64_t trellis_stable_hash(const uint8_t *bytes, size_t length) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < length; i++) {
        h ^= bytes[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

int trellis_function_line(trellis_vm *vm, int index) {
    lua_State *L = vm->L;
    if (lua_type(L, index) != LUA_TFUNCTION || !lua_checkstack(L, 1)) return 0;
    lua_Debug ar;
    lua_pushvalue(L, index);
    if (!lua_getinfo(L, ">S", &ar)) return 0;
    return ar.linedefined > 0 ? ar.linedefined : 0;
}
