/* Encoding what a callback returned as MessagePack in C: the overlay's messages go from the
 * script to the wire (or to the simulator's next node) as bytes, without becoming Swift values
 * on the way. The encoding is exactly what Swift's reader and encoder together would produce
 * (LuaValueReader, then MessagePack.encode): integers in their smallest form, floats as
 * float64, UTF-8 strings as str and other strings as bin, a table whose keys are exactly 1..n
 * as an array and any other as a map in canonical key order (integers ascending, then strings
 * byte-wise). This is a fast path only: anything it does not take (a function, a float key, a
 * cycle, a limit reached, a shape the contract does not name) it leaves to Swift, whose reader
 * accepts or reports it exactly as it always did. Nothing here raises: the reads are raw, and
 * the stack grows only through lua_checkstack. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Tables with more entries than this take Swift's path. */
#define TRELLIS_ENCODE_MAX_ENTRIES 4096
/* Deepest nesting the fast path follows (the limit a VM sets may be lower). */
#define TRELLIS_ENCODE_MAX_DEPTH 64
/* Bytes of encoding buffer a VM keeps between calls; one message larger than this gets a
 * buffer of its own size, freed at the next call. */
#define TRELLIS_ENCODE_KEPT_BUFFER (1 << 20)
/* Map entries sorted in place on the C stack before a heap array is needed. */
#define TRELLIS_ENCODE_LOCAL_ENTRIES 16

struct encoder {
    lua_State *L;
    struct trellis_host *out;
    int max_depth;
    int64_t elements_left;
    const void *open[TRELLIS_ENCODE_MAX_DEPTH];
    int open_count;
};

struct map_entry {
    int is_integer;
    lua_Integer integer;
    const char *text;
    size_t length;
    int value_index;
};

/* Makes room for more bytes; fails past the limit (a table may hold one big string many
 * times over) or when memory runs out. */
static int reserve(struct trellis_host *out, size_t more) {
    if (more > out->encoded_limit - out->encoded_length) return 0;
    if (out->encoded_length + more <= out->encoded_capacity) return 1;
    size_t capacity = out->encoded_capacity ? out->encoded_capacity : 256;
    while (capacity < out->encoded_length + more) capacity *= 2;
    if (capacity > out->encoded_limit) capacity = out->encoded_limit;
    uint8_t *grown = realloc(out->encoded, capacity);
    if (grown == NULL) return 0;
    out->encoded = grown;
    out->encoded_capacity = capacity;
    return 1;
}

static void put_byte(struct trellis_host *out, uint8_t byte) { out->encoded[out->encoded_length++] = byte; }

static void put_big_endian(struct trellis_host *out, uint64_t value, int bytes) {
    for (int shift = 8 * (bytes - 1); shift >= 0; shift -= 8) put_byte(out, (uint8_t)(value >> shift));
}

/* A length header: the fix form up to fix_max (none when fix is 0), then 8 (when b8 is not
 * 0), 16 or 32 bits of length. */
static int put_header(struct trellis_host *out, size_t count, uint8_t fix, size_t fix_max, uint8_t b8, uint8_t b16, uint8_t b32) {
    if (!reserve(out, 5)) return 0;
    if (fix && count <= fix_max) put_byte(out, fix | (uint8_t)count);
    else if (b8 && count <= 0xff) { put_byte(out, b8); put_byte(out, (uint8_t)count); }
    else if (count <= 0xffff) { put_byte(out, b16); put_big_endian(out, count, 2); }
    else if (count <= 0xffffffffu) { put_byte(out, b32); put_big_endian(out, count, 4); }
    else return 0;
    return 1;
}

static int put_integer(struct trellis_host *out, lua_Integer i) {
    if (!reserve(out, 9)) return 0;
    if (i >= 0 && i <= 0x7f) put_byte(out, (uint8_t)i);
    else if (i >= -32 && i < 0) put_byte(out, (uint8_t)(int8_t)i);
    else if (i > 0 && i <= 0xff) { put_byte(out, 0xcc); put_byte(out, (uint8_t)i); }
    else if (i > 0 && i <= 0xffff) { put_byte(out, 0xcd); put_big_endian(out, (uint64_t)i, 2); }
    else if (i > 0 && i <= 0xffffffffLL) { put_byte(out, 0xce); put_big_endian(out, (uint64_t)i, 4); }
    else if (i >= INT8_MIN && i < 0) { put_byte(out, 0xd0); put_byte(out, (uint8_t)(int8_t)i); }
    else if (i >= INT16_MIN && i < 0) { put_byte(out, 0xd1); put_big_endian(out, (uint64_t)(uint16_t)(int16_t)i, 2); }
    else if (i >= INT32_MIN && i < 0) { put_byte(out, 0xd2); put_big_endian(out, (uint64_t)(uint32_t)(int32_t)i, 4); }
    else { put_byte(out, 0xd3); put_big_endian(out, (uint64_t)i, 8); }
    return 1;
}

/* Whether the bytes are well-formed UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF), as Swift's String(validating:) decides. */
static int valid_utf8(const unsigned char *s, size_t length) {
    size_t i = 0;
    while (i < length) {
        unsigned char c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t need;
        unsigned char low = 0x80, high = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) need = 1;
        else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            if (c == 0xe0) low = 0xa0;
            if (c == 0xed) high = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            if (c == 0xf0) low = 0x90;
            if (c == 0xf4) high = 0x8f;
        } else return 0;
        if (length - i <= need) return 0;
        if (s[i + 1] < low || s[i + 1] > high) return 0;
        for (size_t k = 2; k <= need; k++) {
            if (s[i + k] < 0x80 || s[i + k] > 0xbf) return 0;
        }
        i += need + 1;
    }
    return 1;
}

static int put_string(struct trellis_host *out, const char *text, size_t length) {
    int ok = valid_utf8((const unsigned char *)text, length)
                 ? put_header(out, length, 0xa0, 31, 0xd9, 0xda, 0xdb)
                 : put_header(out, length, 0, 0, 0xc4, 0xc5, 0xc6);
    if (!ok || !reserve(out, length)) return 0;
    memcpy(out->encoded + out->encoded_length, text, length);
    out->encoded_length += length;
    return 1;
}

static int entry_order(const void *left, const void *right) {
    const struct map_entry *a = left, *b = right;
    if (a->is_integer != b->is_integer) return a->is_integer ? -1 : 1;
    if (a->is_integer) return (a->integer > b->integer) - (a->integer < b->integer);
    size_t common = a->length < b->length ? a->length : b->length;
    int order = memcmp(a->text, b->text, common);
    if (order != 0) return order;
    return (a->length > b->length) - (a->length < b->length);
}

static int encode_value(struct encoder *e, int index, int depth);

/* Pushes every key and value of the table at index (raw, in traversal order) above top;
 * returns their number, or -1 for a key that is neither a string nor an integer, or too many
 * entries. */
static int push_entries(lua_State *L, int index) {
    int count = 0;
    if (!lua_checkstack(L, 3)) return -1;
    lua_pushnil(L);
    while (lua_next(L, index)) {
        int key_type = lua_type(L, -2);
        if (!(key_type == LUA_TSTRING || (key_type == LUA_TNUMBER && lua_isinteger(L, -2)))) return -1;
        if (++count > TRELLIS_ENCODE_MAX_ENTRIES || !lua_checkstack(L, 3)) return -1;
        lua_pushvalue(L, -2);
    }
    return count;
}

/* Whether the count keys pushed above top are exactly 1..count; fills slot[k - 1] with the
 * stack index of the value under key k. */
static int is_sequence(lua_State *L, int top, int count, int *slot) {
    for (int i = 0; i < count; i++) slot[i] = 0;
    for (int i = 0; i < count; i++) {
        int key = top + 1 + 2 * i;
        if (!lua_isinteger(L, key)) return 0;
        lua_Integer k = lua_tointegerx(L, key, NULL);
        if (k < 1 || k > count || slot[k - 1]) return 0;
        slot[k - 1] = key + 1;
    }
    return 1;
}

/* Encodes the count entries pushed above top: as an array when their keys are exactly
 * 1..count, as a map in canonical key order otherwise. */
static int encode_entries(struct encoder *e, int top, int count, int depth) {
    lua_State *L = e->L;
    int slot_space[TRELLIS_ENCODE_LOCAL_ENTRIES];
    int *slots = count <= TRELLIS_ENCODE_LOCAL_ENTRIES ? slot_space : malloc(sizeof *slots * (size_t)count);
    if (slots == NULL) return 0;
    int ok = 1;
    if (is_sequence(L, top, count, slots)) {
        ok = put_header(e->out, (size_t)count, 0x90, 15, 0, 0xdc, 0xdd);
        for (int i = 0; ok && i < count; i++) ok = encode_value(e, slots[i], depth + 1);
    } else {
        struct map_entry entry_space[TRELLIS_ENCODE_LOCAL_ENTRIES];
        struct map_entry *entries =
            count <= TRELLIS_ENCODE_LOCAL_ENTRIES ? entry_space : malloc(sizeof *entries * (size_t)count);
        ok = entries != NULL;
        for (int i = 0; ok && i < count; i++) {
            struct map_entry *entry = &entries[i];
            int key = top + 1 + 2 * i;
            entry->value_index = key + 1;
            entry->is_integer = lua_type(L, key) == LUA_TNUMBER;
            entry->integer = entry->is_integer ? lua_tointegerx(L, key, NULL) : 0;
            entry->text = entry->is_integer ? NULL : lua_tolstring(L, key, &entry->length);
        }
        if (ok) {
            qsort(entries, (size_t)count, sizeof *entries, entry_order);
            ok = put_header(e->out, (size_t)count, 0x80, 15, 0, 0xde, 0xdf);
        }
        for (int i = 0; ok && i < count; i++) {
            ok = entries[i].is_integer ? put_integer(e->out, entries[i].integer)
                                       : put_string(e->out, entries[i].text, entries[i].length);
            ok = ok && encode_value(e, entries[i].value_index, depth + 1);
        }
        if (entries != entry_space) free(entries);
    }
    if (slots != slot_space) free(slots);
    return ok;
}

static int encode_table(struct encoder *e, int index, int depth) {
    lua_State *L = e->L;
    if (depth >= e->max_depth) return 0;
    const void *identity = lua_topointer(L, index);
    for (int i = 0; i < e->open_count; i++) {
        if (e->open[i] == identity) return 0;
    }
    int top = lua_gettop(L);
    int count = push_entries(L, index);
    int ok = count >= 0;
    if (ok) {
        e->open[e->open_count++] = identity;
        ok = encode_entries(e, top, count, depth);
        e->open_count--;
    }
    lua_settop(L, top);
    return ok;
}

/* Counts one value, as Swift's reader does, and encodes it. */
static int encode_value(struct encoder *e, int index, int depth) {
    lua_State *L = e->L;
    if (--e->elements_left < 0) return 0;
    switch (lua_type(L, index)) {
    case LUA_TNIL:
        if (!reserve(e->out, 1)) return 0;
        put_byte(e->out, 0xc0);
        return 1;
    case LUA_TBOOLEAN:
        if (!reserve(e->out, 1)) return 0;
        put_byte(e->out, lua_toboolean(L, index) ? 0xc3 : 0xc2);
        return 1;
    case LUA_TNUMBER:
        if (lua_isinteger(L, index)) return put_integer(e->out, lua_tointegerx(L, index, NULL));
        if (!reserve(e->out, 9)) return 0;
        double number = lua_tonumberx(L, index, NULL);
        uint64_t bits;
        memcpy(&bits, &number, sizeof bits);
        put_byte(e->out, 0xcb);
        put_big_endian(e->out, bits, 8);
        return 1;
    case LUA_TSTRING: {
        size_t length;
        const char *text = lua_tolstring(L, index, &length);
        return put_string(e->out, text, length);
    }
    case LUA_TTABLE:
        return encode_table(e, lua_absindex(L, index), depth);
    default:
        return 0;
    }
}

/* The key "to" or "msg" of one message's table: which, or 0 for any other key. */
static int message_field(lua_State *L, int key) {
    if (lua_type(L, key) != LUA_TSTRING) return 0;
    size_t length;
    const char *text = lua_tolstring(L, key, &length);
    if (length == 2 && memcmp(text, "to", 2) == 0) return 1;
    if (length == 3 && memcmp(text, "msg", 3) == 0) return 2;
    return 0;
}

/* Encodes message number i (its table at index): appends its peer id's bytes and its msg's
 * encoding, and records where they are. */
static int encode_message(struct encoder *e, int index, size_t i) {
    lua_State *L = e->L;
    struct trellis_host *out = e->out;
    if (lua_type(L, index) != LUA_TTABLE || --e->elements_left < 0 || e->max_depth <= 1) return 0;
    const void *identity = lua_topointer(L, index);
    if (identity == e->open[0]) return 0;
    int top = lua_gettop(L);
    int count = push_entries(L, index);
    int to = 0, msg = 0;
    for (int k = 0; k < count; k++) {
        int key = top + 1 + 2 * k;
        switch (message_field(L, key)) {
        case 1: to = key + 1; break;
        case 2: msg = key + 1; break;
        default: count = -1;
        }
    }
    size_t length = 0;
    const char *peer = to && lua_type(L, to) == LUA_TSTRING ? lua_tolstring(L, to, &length) : NULL;
    /* The keys "to" and "msg" are not written, but Swift's reader counts their 5 bytes. */
    int ok = count >= 0 && peer != NULL && valid_utf8((const unsigned char *)peer, length) && --e->elements_left >= 0
             && out->encoded_limit - out->encoded_length >= 5;
    if (ok) out->encoded_limit -= 5;
    struct trellis_encoded_message *record = &out->encoded_messages[i];
    if (ok && (ok = reserve(out, length))) {
        record->to_offset = out->encoded_length;
        record->to_length = length;
        memcpy(out->encoded + out->encoded_length, peer, length);
        out->encoded_length += length;
        record->message_offset = out->encoded_length;
        e->open[e->open_count++] = identity;
        if (msg) ok = encode_value(e, msg, 2);
        else if ((ok = reserve(out, 1))) put_byte(out, 0xc0);
        e->open_count--;
        record->message_length = out->encoded_length - record->message_offset;
    }
    lua_settop(L, top);
    return ok;
}

int64_t trellis_encode_messages(trellis_vm *vm, int index, int max_depth, int64_t max_elements, int64_t max_bytes) {
    lua_State *L = vm->L;
    struct trellis_host *out = vm->host;
    trellis_enter(vm);
    if (out->encoded_capacity > TRELLIS_ENCODE_KEPT_BUFFER) {
        free(out->encoded);
        out->encoded = NULL;
        out->encoded_capacity = 0;
    }
    out->encoded_length = 0;
    out->encoded_limit = max_bytes > 0 ? (size_t)max_bytes : 0;
    index = lua_absindex(L, index);
    if (lua_type(L, index) != LUA_TTABLE || max_depth < 1 || max_depth > TRELLIS_ENCODE_MAX_DEPTH || max_elements < 1) {
        return -1;
    }
    struct encoder e = {L, out, max_depth, max_elements - 1, {lua_topointer(L, index)}, 1};
    int top = lua_gettop(L);
    int count = push_entries(L, index);
    int64_t result = -1;
    if (count >= 0 && (size_t)count > out->encoded_message_capacity) {
        struct trellis_encoded_message *grown = realloc(out->encoded_messages, sizeof *grown * (size_t)count);
        if (grown != NULL) {
            out->encoded_messages = grown;
            out->encoded_message_capacity = (size_t)count;
        } else count = -1;
    }
    int slot_space[TRELLIS_ENCODE_LOCAL_ENTRIES];
    int *slots = count > TRELLIS_ENCODE_LOCAL_ENTRIES ? malloc(sizeof *slots * (size_t)count) : slot_space;
    if (count >= 0 && slots != NULL && is_sequence(L, top, count, slots)) {
        result = count;
        for (int i = 0; i < count && result >= 0; i++) {
            if (!encode_message(&e, slots[i], (size_t)i)) result = -1;
        }
    }
    if (slots != slot_space) free(slots);
    lua_settop(L, top);
    return result;
}

const uint8_t *trellis_encoded_bytes(const trellis_vm *vm) { return vm->host->encoded; }

const struct trellis_encoded_message *trellis_encoded_messages(const trellis_vm *vm) { return vm->host->encoded_messages; }

void trellis_encoder_release(trellis_vm *vm) {
    struct trellis_host *out = vm->host;
    free(out->encoded);
    free(out->encoded_messages);
    out->encoded = NULL;
    out->encoded_messages = NULL;
    out->encoded_length = out->encoded_capacity = out->encoded_message_capacity = 0;
}
