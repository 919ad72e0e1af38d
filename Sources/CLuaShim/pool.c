/* A VM's own small-block allocator. Lua tells the allocator every block's size when it frees
 * or resizes it, so small blocks need no header: they are carved from the VM's own pages by
 * size class and recycled through one free list per class. A VM's objects thus sit together
 * (a callback touches few cache lines and pages, which matters with thousands of VMs on one
 * core), and a VM that runs on another thread than the one that created it takes no lock of
 * the C allocator's. Larger blocks go to malloc, behind a header.
 *
 * VMs that share a Lua state (trellis_vm_new_sharing) free each other's blocks: the garbage
 * collector frees whatever is dead while any of them runs. So every block knows its owner, the
 * VM it was charged to: a page starts with its owner, a large block's header names it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* A page: its owner and the link to the previous page, then blocks. The header keeps blocks
 * 16-aligned; pages are aligned to their size, so a block finds its page by masking. */
struct trellis_pool_page {
    trellis_vm *owner;
    struct trellis_pool_page *previous;
};

/* In front of a large block: its owner, padded to keep the block 16-aligned. */
struct large_header {
    trellis_vm *owner;
    size_t padding;
};

static size_t size_class(size_t size) { return (size + TRELLIS_POOL_GRAIN - 1) / TRELLIS_POOL_GRAIN - 1; }

static int is_small(size_t size) { return size <= TRELLIS_POOL_MAX; }

static void *take_small(trellis_vm *owner, size_t size) {
    struct trellis_pool *pool = &owner->pool;
    size_t class = size_class(size);
    void *block = pool->free_blocks[class];
    if (block != NULL) {
        memcpy(&pool->free_blocks[class], block, sizeof block);
        return block;
    }
    size_t rounded = (class + 1) * TRELLIS_POOL_GRAIN;
    if ((size_t)(pool->end - pool->next) < rounded) {
        struct trellis_pool_page *page = aligned_alloc(TRELLIS_POOL_PAGE, TRELLIS_POOL_PAGE);
        if (page == NULL) return NULL;
        page->owner = owner;
        page->previous = pool->pages;
        pool->pages = page;
        pool->next = (char *)(page + 1);
        pool->end = (char *)page + TRELLIS_POOL_PAGE;
    }
    block = pool->next;
    pool->next += rounded;
    return block;
}

void *trellis_pool_take(trellis_vm *owner, size_t size) {
    if (is_small(size)) return take_small(owner, size);
    struct large_header *header = malloc(sizeof *header + size);
    if (header == NULL) return NULL;
    header->owner = owner;
    return header + 1;
}

trellis_vm *trellis_pool_owner(void *block, size_t size) {
    if (!is_small(size)) return ((struct large_header *)block - 1)->owner;
    return ((struct trellis_pool_page *)((uintptr_t)block & ~(uintptr_t)(TRELLIS_POOL_PAGE - 1)))->owner;
}

void trellis_pool_give_back(trellis_vm *owner, void *block, size_t size) {
    if (!is_small(size)) {
        free((struct large_header *)block - 1);
        return;
    }
    struct trellis_pool *pool = &owner->pool;
    size_t class = size_class(size);
    memcpy(block, &pool->free_blocks[class], sizeof block);
    pool->free_blocks[class] = block;
}

void *trellis_pool_resize(trellis_vm *owner, void *block, size_t old_size, size_t new_size) {
    if (is_small(old_size) && is_small(new_size) && size_class(old_size) == size_class(new_size)) return block;
    if (!is_small(old_size) && !is_small(new_size)) {
        struct large_header *header = realloc((struct large_header *)block - 1, sizeof *header + new_size);
        return header == NULL ? NULL : header + 1;
    }
    void *moved = trellis_pool_take(owner, new_size);
    if (moved == NULL) return NULL;
    memcpy(moved, block, old_size < new_size ? old_size : new_size);
    trellis_pool_give_back(owner, block, old_size);
    return moved;
}

void trellis_pool_release(struct trellis_pool *pool) {
    while (pool->pages != NULL) {
        struct trellis_pool_page *previous = pool->pages->previous;
        free(pool->pages);
        pool->pages = previous;
    }
    memset(pool, 0, sizeof *pool);
}
