/* Shared between the C files of the shim; not visible to Swift. */
#ifndef TRELLIS_LUA_INTERNAL_H
#define TRELLIS_LUA_INTERNAL_H

#include <lua5.4/lua.h>
#include <lua5.4/lauxlib.h>
#include <lua5.4/lualib.h>

#include "trellis_lua_shim.h"

/* Instructions between two checks of the budget. */
#define TRELLIS_HOOK_STEP 1000

/* Small blocks: up to TRELLIS_POOL_MAX bytes, in classes TRELLIS_POOL_GRAIN bytes apart, cut
 * from pages of TRELLIS_POOL_PAGE bytes (pool.c). */
#define TRELLIS_POOL_GRAIN 16
#define TRELLIS_POOL_MAX 512
#define TRELLIS_POOL_PAGE 8192

struct trellis_pool_page;

/* A VM's own blocks: pages of small blocks (each page says which VM it belongs to) and free
 * lists by size class. */
struct trellis_pool {
    void *free_blocks[TRELLIS_POOL_MAX / TRELLIS_POOL_GRAIN];
    char *next;
    char *end;
    struct trellis_pool_page *pages;
};

/* A new block of size bytes from owner's pool (or, when large, from malloc with a header
 * naming owner); NULL when out of memory. */
void *trellis_pool_take(trellis_vm *owner, size_t size);

/* The VM a block of size bytes was taken for. */
trellis_vm *trellis_pool_owner(void *block, size_t size);

/* Gives a block back to its owner's pool (or to malloc). */
void trellis_pool_give_back(trellis_vm *owner, void *block, size_t size);

/* Resizes a block within its owner's pool; NULL when out of memory (the block stays). */
void *trellis_pool_resize(trellis_vm *owner, void *block, size_t old_size, size_t new_size);

/* Frees every page of the pool, once no block of it is alive. */
void trellis_pool_release(struct trellis_pool *pool);

/* A set of table addresses, by open addressing: the tables a snapshot has recorded. */
struct trellis_visited {
    const void **slots;
    size_t capacity;
    size_t count;
};

/* The Lua state VMs run on. A VM made by trellis_vm_new has one to itself; the VMs made by
 * trellis_vm_new_sharing share their first VM's (the simulator puts thousands of nodes in
 * one state per shard, so that they share compiled code, strings and libraries). Only one VM
 * of a host runs at a time: `current` is the one whose callback runs, and what is allocated
 * meanwhile is charged to it. */
struct trellis_host {
    lua_State *L;
    trellis_vm *current;
    trellis_vm *first;
    /* Whether other VMs share first's state. */
    int shared;
    /* VMs closed while their blocks may still be alive: taken over by the next VMs made, or
     * freed with the host. */
    trellis_vm *retired;
    /* How many VMs were made on the state (the next one's number). */
    int vm_count;
    /* The VM whose callback the rollback log records (rollback.c): one at a time. */
    trellis_vm *log_owner;
    /* The rollback log's threads (anchored in a registry table), how many exist and how many
     * the last snapshot used; the log and the encoder's buffers serve every VM of the host,
     * one call at a time, and stay warm in the cache between them. */
    lua_State **logs;
    int log_count;
    int logs_used;
    /* The tables the last snapshot recorded. */
    struct trellis_visited visited;
    /* What trellis_encode_messages wrote last (encode.c): the bytes, and per message where
     * its parts are. */
    uint8_t *encoded;
    size_t encoded_length;
    size_t encoded_capacity;
    size_t encoded_limit;
    struct trellis_encoded_message *encoded_messages;
    size_t encoded_message_capacity;
};

/* The registry slots of one VM, after the first TRELLIS_FIRST_SLOT - 1 (Lua's own take 1 and
 * 2). VM number n has slots TRELLIS_FIRST_SLOT + n * TRELLIS_KEY_COUNT + which: integer keys,
 * so that with thousands of VMs on one state they sit in the registry's array part, found
 * without hashing, each VM's next to each other. */
enum { TRELLIS_KEY_SCRIPT, TRELLIS_KEY_STATE, TRELLIS_KEY_KEYED, TRELLIS_KEY_LOG, TRELLIS_KEY_ENV, TRELLIS_KEY_COUNT };
#define TRELLIS_FIRST_SLOT 16

struct trellis_vm {
    /* The thread the VM runs on: its state's main thread, which the VMs of a shared state
     * take turns on. */
    lua_State *L;
    struct trellis_host *host;
    /* The VM's number on its state: which registry slots are its own. */
    int number;
    trellis_vm *next_retired;
    struct trellis_pool pool;
    size_t memory_used;
    size_t memory_peak;
    size_t memory_cap;
    int64_t budget;
    int64_t instructions;
    int budget_exhausted;
    int memory_refusals;
    int error_line;
    int last_line;
    trellis_log_fn log;
    void *log_context;
    /* Whether the log holds a snapshot the current callback can be rolled back to
     * (rollback.c). */
    int snapshot_taken;
    /* The stored state's lua_topointer when it is a table (or another object), else NULL. */
    const void *state_identity;
};

/* The VM whose code runs on L's state now. */
trellis_vm *trellis_vm_of(lua_State *L);

/* Makes vm the one that runs (and is charged for allocations) on its state; every entry point
 * that lets Lua run or allocate calls it first. */
static inline void trellis_enter(trellis_vm *vm) { vm->host->current = vm; }

/* Whether vm shares its state with other VMs. */
static inline int trellis_is_shared(const trellis_vm *vm) { return vm->host->shared; }

/* The registry slot of one of vm's values. */
static inline lua_Integer trellis_key(const trellis_vm *vm, int which) {
    return TRELLIS_FIRST_SLOT + (lua_Integer)vm->number * TRELLIS_KEY_COUNT + which;
}

/* Starts a budgeted run: makes vm the one that runs, resets its counters and arms the hook
 * on its thread. */
void trellis_arm_budget(trellis_vm *vm, int64_t budget);

/* The message handler for protected calls: records the line of the innermost Lua function
 * and turns a non-string error object into a message. */
int trellis_message_handler(lua_State *L);

/* Pushes the value encoded as MessagePack at *cursor (before end), advancing the cursor.
 * Raises on malformed input. */
void trellis_push_msgpack(lua_State *L, const uint8_t **cursor, const uint8_t *end, int depth);

/* The registry key of a host's compiled scripts, by chunk name and source (invoke.c). */
extern const char trellis_compiled_key;

/* Frees the rollback log's C memory, as vm's host closes (the threads go with the state). */
void trellis_log_release(trellis_vm *vm);

/* Frees the encoder's buffers, as vm's host closes. */
void trellis_encoder_release(trellis_vm *vm);

/* Records the tables of the stored state, which is at stack index state of L, so that
 * trellis_vm_restore_state can put them back as they are now. Raises on error (depth,
 * memory); call it protected. */
void trellis_snapshot_state(trellis_vm *vm, lua_State *L, int state);

#endif
