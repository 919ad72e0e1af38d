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

struct trellis_pool {
    void *free_blocks[TRELLIS_POOL_MAX / TRELLIS_POOL_GRAIN];
    char *next;
    char *end;
    struct trellis_pool_page *pages;
};

/* Lua's allocator contract over the pool: resizes block from old_size to new_size bytes (0
 * frees it; a NULL block is a new one); returns NULL when out of memory. */
void *trellis_pool_resize(struct trellis_pool *pool, void *block, size_t old_size, size_t new_size);

/* Frees every page of the pool, once the VM is closed. */
void trellis_pool_release(struct trellis_pool *pool);

/* A set of table addresses, by open addressing: the tables a snapshot has recorded. */
struct trellis_visited {
    const void **slots;
    size_t capacity;
    size_t count;
};


struct trellis_vm {
    lua_State *L;
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
    /* The rollback log's threads (anchored in a registry table), how many exist and how many
     * the last snapshot used. */
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

/* The VM that owns L (any of its threads). */
trellis_vm *trellis_vm_of(lua_State *L);

/* Starts a budgeted run: resets the counters and arms the hook on the main thread. */
void trellis_arm_budget(trellis_vm *vm, int64_t budget);

/* The message handler for protected calls: records the line of the innermost Lua function
 * and turns a non-string error object into a message. */
int trellis_message_handler(lua_State *L);

/* Pushes the value encoded as MessagePack at *cursor (before end), advancing the cursor.
 * Raises on malformed input. */
void trellis_push_msgpack(lua_State *L, const uint8_t **cursor, const uint8_t *end, int depth);

/* Registry keys. */
extern const char trellis_script_key;
extern const char trellis_state_key;
extern const char trellis_keyed_states_key;
extern const char trellis_snapshot_log_key;

/* Frees the rollback log's C memory (the threads go with the VM). */
void trellis_log_release(trellis_vm *vm);

/* Frees the encoder's buffers. */
void trellis_encoder_release(trellis_vm *vm);

/* Records the stored state's tables, so that trellis_vm_restore_state can put them back as
 * they are now. Raises on error (depth, memory); call it protected. */
void trellis_snapshot_state(trellis_vm *vm, lua_State *L);

#endif
