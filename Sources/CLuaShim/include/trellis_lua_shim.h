/*
 * The C side of Trellis's Lua host.
 *
 * Lua reports errors with longjmp. A longjmp must never cross a Swift frame, so every Lua API
 * call that can raise (anything that allocates, calls Lua code or checks arguments) happens
 * in C, inside lua_pcall, in this library. What Swift may call is declared here: operations
 * that run protected and return a status, and plain reads of the stack that cannot raise.
 * The lua_State itself is opaque to Swift.
 */
#ifndef TRELLIS_LUA_SHIM_H
#define TRELLIS_LUA_SHIM_H

#include <stddef.h>
#include <stdint.h>

typedef struct trellis_vm trellis_vm;

/* Status codes, equal to Lua's. */
enum {
    TRELLIS_OK = 0,
    TRELLIS_ERRRUN = 2,
    TRELLIS_ERRSYNTAX = 3,
    TRELLIS_ERRMEM = 4,
    TRELLIS_ERRERR = 5,
};

/* Value types, equal to Lua's LUA_T* constants. */
enum {
    TRELLIS_TNONE = -1,
    TRELLIS_TNIL = 0,
    TRELLIS_TBOOLEAN = 1,
    TRELLIS_TLIGHTUSERDATA = 2,
    TRELLIS_TNUMBER = 3,
    TRELLIS_TSTRING = 4,
    TRELLIS_TTABLE = 5,
    TRELLIS_TFUNCTION = 6,
    TRELLIS_TUSERDATA = 7,
    TRELLIS_TTHREAD = 8,
};

/* Receives each trellis.log / print line of a script. Must not call back into the VM. */
typedef void (*trellis_log_fn)(void *context, const char *line, size_t length);

/* A VM whose allocations are capped at memory_cap bytes, or NULL when even that fails. */
trellis_vm *trellis_vm_new(size_t memory_cap, trellis_log_fn log, void *log_context);
void trellis_vm_close(trellis_vm *vm);

/* A VM on first's Lua state, with its own environment, script, state, memory account and
 * cap, or NULL when that cannot be made. Many VMs share compiled code, strings and the
 * libraries this way (the simulator's nodes); they must all run on one thread at a time, and
 * close before first does. first must have its sandbox open. A sharing VM that closes leaves
 * its memory (and what of it is still alive) to the next VM made on the state. */
trellis_vm *trellis_vm_new_sharing(trellis_vm *first, size_t memory_cap, trellis_log_fn log, void *log_context);

/* Opens the sandboxed libraries and the trellis table, and seeds math.random. Leaves an
 * error message on the stack when it fails. */
int trellis_vm_open_sandbox(trellis_vm *vm, int64_t random_seed);

/* Bytes the VM holds now, and the most it ever held. */
size_t trellis_vm_memory_used(const trellis_vm *vm);
size_t trellis_vm_memory_peak(const trellis_vm *vm);

/* Whether the last load or invoke ran out of its instruction budget. */
int trellis_vm_budget_exhausted(const trellis_vm *vm);

/* Whether the last load or invoke was refused memory at least once. */
int trellis_vm_memory_refused(const trellis_vm *vm);

/* The line of the innermost Lua function when the last error was raised (or, failing that,
 * where the budget was last checked), or 0. */
int trellis_vm_error_line(const trellis_vm *vm);

/* Loads source text (never binary) named chunk_name, runs it under the budget and stores its
 * single result as the script table. On success the result is at stack index 1; otherwise
 * the error message is. */
int trellis_vm_load_script(trellis_vm *vm, const char *source, size_t length, const char *chunk_name,
                           int64_t instruction_budget);

/* Calls script[callback] with the stored state first (when pass_state) and then the elements
 * of args, a MessagePack array, under the instruction budget. On success the nresults results
 * are at stack indices 1..nresults; otherwise the error message is at index 1 and the stored
 * state's tables are as they were before the call. A missing callback is an error. */
int trellis_vm_invoke(trellis_vm *vm, const char *callback, int pass_state, const uint8_t *args, size_t args_length,
                      int nresults, int64_t instruction_budget);

/* Puts the stored state's tables back as they were before the last trellis_vm_invoke with
 * pass_state, for a call whose results were refused; does nothing once a state was stored
 * since. Leaves the stack as it is. */
int trellis_vm_restore_state(trellis_vm *vm);

/* Drops what the last trellis_vm_invoke recorded for a rollback, once its results are
 * accepted, so that the record keeps no replaced values alive. */
void trellis_vm_forget_snapshot(trellis_vm *vm);

/* Like trellis_vm_invoke, but the first argument is the state kept under key (nil when there
 * is none): the states of many actors of one script live side by side in one VM. */
int trellis_vm_invoke_keyed(trellis_vm *vm, const char *callback, const char *key, size_t key_length,
                            const uint8_t *args, size_t args_length, int nresults, int64_t instruction_budget);

/* Keeps the value at index as the state under key, or forgets the state under key. */
int trellis_vm_store_keyed(trellis_vm *vm, const char *key, size_t key_length, int index);
int trellis_vm_drop_keyed(trellis_vm *vm, const char *key, size_t key_length);

/* Pushes the stored state, so that Swift can read it (hot swap carries it to a new VM).
 * Cannot raise; returns its type, or TRELLIS_TNONE when the stack cannot grow. */
int trellis_vm_push_state(trellis_vm *vm);

/* Makes the value at index the stored state; the last call can no longer be rolled back. */
int trellis_vm_store_state(trellis_vm *vm, int index);

/* Runs a full garbage collection (not in a shared state, where it would walk every VM's
 * objects: there a VM short of memory gets Lua's emergency collection). */
int trellis_vm_collect(trellis_vm *vm);

/* The line where the function at index is defined, or 0 for anything else. */
int trellis_function_line(trellis_vm *vm, int index);

/* Reads of the stack. None of these can raise. */
int trellis_top(trellis_vm *vm);
void trellis_settop(trellis_vm *vm, int index);
int trellis_type(trellis_vm *vm, int index);
const char *trellis_type_name(trellis_vm *vm, int type);
int trellis_is_integer(trellis_vm *vm, int index);
int64_t trellis_to_integer(trellis_vm *vm, int index);
double trellis_to_number(trellis_vm *vm, int index);
int trellis_to_boolean(trellis_vm *vm, int index);
/* The bytes of a string value; NULL for any other type (numbers are not converted). */
const char *trellis_to_string(trellis_vm *vm, int index, size_t *length);
uint64_t trellis_raw_length(trellis_vm *vm, int index);
const void *trellis_to_pointer(trellis_vm *vm, int index);
/* Table traversal without metamethods: pushes a nil key to start, then each call replaces the
 * key on top with the next key and value. Returns 1 while there are entries, 0 at the end
 * (the key is popped), -1 when the stack cannot grow. */
int trellis_push_nil(trellis_vm *vm);
int trellis_next(trellis_vm *vm, int table_index);

/* Where one overlay message's parts are in the bytes trellis_encode_messages wrote: its peer
 * id (the string's bytes) and its msg (MessagePack). */
struct trellis_encoded_message {
    size_t to_offset;
    size_t to_length;
    size_t message_offset;
    size_t message_length;
};
/* Encodes the overlay messages at index, { { to = <peer id>, msg = <value> }, ... }, with each
 * msg as MessagePack, under the same depth and element limits as Swift's reader of values and
 * in at most max_bytes bytes.
 * Returns how many messages there are, or -1 when Swift must read them instead: any other
 * shape, any value that is not one of the contract's, a cycle or a limit reached (Swift's
 * reader then reports exactly what is wrong). Cannot raise. The results stay valid until the
 * next call. */
int64_t trellis_encode_messages(trellis_vm *vm, int index, int max_depth, int64_t max_elements, int64_t max_bytes);
const uint8_t *trellis_encoded_bytes(const trellis_vm *vm);
const struct trellis_encoded_message *trellis_encoded_messages(const trellis_vm *vm);
/* The shared 64-bit hash of the script contract: FNV-1a 64 followed by murmur3's fmix64. */
uint64_t trellis_stable_hash(const uint8_t *bytes, size_t length);

#endif
