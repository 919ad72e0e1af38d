/* A VM's own small-block allocator. Lua tells the allocator every block's size when it frees
 * or resizes it, so small blocks need no header: they are carved from the VM's own pages by
 * size class and recycled through one free list per class. A VM's objects thus sit together
 * (a callback touches few cache lines and pages, which matters with thousands of VMs on one
 * core), and a VM that runs on another thread than the one that created it takes no lock of
 * the C allocator's. Larger blocks go to malloc. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* A page: the link to the previous one, then blocks. The header keeps blocks 16-aligned. */
struct trellis_pool_page {
    struct trellis_pool_page *previous;
    size_t padding;
};

static size_t size_class(size_t size) { return (size + TRELLIS_POOL_GRAIN - 1) / TRELLIS_POOL_GRAIN - 1; }

static void *pool_take(struct trellis_pool *pool, size_t size) {
    size_t class = size_class(size);
    void *block = pool->free_blocks[class];
    if (block != NULL) {
        memcpy(&pool->free_blocks[class], block, sizeof block);
        return block;
    }
    size_t rounded = (class + 1) * TRELLIS_POOL_GRAIN;
    if ((size_t)(pool->end - pool->next) < rounded) {
        struct trellis_pool_page *page = malloc(TRELLIS_POOL_PAGE);
        if (page == NULL) return NULL;
        page->previous = pool->pages;
        pool->pages = page;
        pool->next = (char *)(page + 1);
        pool->end = (char *)page + TRELLIS_POOL_PAGE;
    }
    block = pool->next;
    pool->next += rounded;
    return block;
}

static void pool_give_back(struct trellis_pool *pool, void *block, size_t size) {
    size_t class = size_class(size);
    memcpy(block, &pool->free_blocks[class], sizeof block);
    pool->free_blocks[class] = block;
}

static int is_small(size_t size) { return size <= TRELLIS_POOL_MAX; }

void *trellis_pool_resize(struct trellis_pool *pool, void *block, size_t old_size, size_t new_size) {
    if (new_size == 0) {
        if (block == NULL) return NULL;
        if (is_small(old_size)) pool_give_back(pool, block, old_size); else free(block);
        return NULL;
    }
    if (block == NULL) return is_small(new_size) ? pool_take(pool, new_size) : malloc(new_size);
    if (is_small(old_size) && is_small(new_size) && size_class(old_size) == size_class(new_size)) return block;
    if (!is_small(old_size) && !is_small(new_size)) return realloc(block, new_size);
    void *moved = is_small(new_size) ? pool_take(pool, new_size) : malloc(new_size);
    if (moved == NULL) return NULL;
    memcpy(moved, block, old_size < new_size ? old_size : new_size);
    if (is_small(old_size)) pool_give_back(pool, block, old_size); else free(block);
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
