#ifndef HPVM_CSANLOCK_SHIM_H
#define HPVM_CSANLOCK_SHIM_H

// sanlock's headers use uint32_t and friends without including <stdint.h>.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sanlock.h>
#include <sanlock_admin.h>
#include <sanlock_resource.h>
#include <sanlock_rv.h>

/// A `struct sanlk_resource` with one disk (its trailing `disks[]` array does not import into Swift),
/// zeroed, with the names and the disk's path copied in (truncated to their C sizes). Free it with
/// `hpvm_sanlk_resource_free`. Returns NULL when memory runs out.
static inline struct sanlk_resource *_Nullable hpvm_sanlk_resource_new(
    const char *_Nonnull lockspace, const char *_Nonnull name, const char *_Nonnull path, uint64_t offset) {
    struct sanlk_resource *res = calloc(1, sizeof(struct sanlk_resource) + sizeof(struct sanlk_disk));
    if (res == NULL) return NULL;
    strncpy(res->lockspace_name, lockspace, SANLK_NAME_LEN);
    strncpy(res->name, name, SANLK_NAME_LEN);
    res->num_disks = 1;
    strncpy(res->disks[0].path, path, SANLK_PATH_LEN - 1);
    res->disks[0].offset = offset;
    return res;
}

/// Frees a resource made by `hpvm_sanlk_resource_new` (NULL is accepted).
static inline void hpvm_sanlk_resource_free(struct sanlk_resource *_Nullable res) { free(res); }

/// The first disk's path of a resource made by `hpvm_sanlk_resource_new`.
static inline struct sanlk_disk *_Nonnull hpvm_sanlk_resource_disk(struct sanlk_resource *_Nonnull res) {
    return &res->disks[0];
}

/// A lockspace whose host-id disk is `path` at `offset`, zeroed otherwise.
static inline struct sanlk_lockspace hpvm_sanlk_lockspace(
    const char *_Nonnull name, uint64_t host_id, const char *_Nonnull path, uint64_t offset) {
    struct sanlk_lockspace ls;
    memset(&ls, 0, sizeof ls);
    strncpy(ls.name, name, SANLK_NAME_LEN);
    ls.host_id = host_id;
    strncpy(ls.host_id_disk.path, path, SANLK_PATH_LEN - 1);
    ls.host_id_disk.offset = offset;
    return ls;
}

/// Acquires one resource for the connection `sock` (or, with `sock` -1, for the registered `pid`).
/// The corresponding C function is `sanlock_acquire`.
static inline int hpvm_sanlk_acquire_one(int sock, int pid, uint32_t flags, struct sanlk_resource *_Nonnull res) {
    struct sanlk_resource *list[1] = { res };
    return sanlock_acquire(sock, pid, flags, 1, list, NULL);
}

/// Releases one resource held by the connection `sock` (or, with `sock` -1, by `pid`).
/// The corresponding C function is `sanlock_release`.
static inline int hpvm_sanlk_release_one(int sock, int pid, uint32_t flags, struct sanlk_resource *_Nonnull res) {
    struct sanlk_resource *list[1] = { res };
    return sanlock_release(sock, pid, flags, 1, list);
}

/// The owners of a resource as the disk says (the caller frees `*hosts` with `free`).
/// The corresponding C function is `sanlock_read_resource_owners`.
static inline int hpvm_sanlk_read_owners(struct sanlk_resource *_Nonnull res, struct sanlk_host *_Nullable *_Nonnull hosts, int *_Nonnull count) {
    return sanlock_read_resource_owners(res, 0, hosts, count);
}

/// Frees memory that libsanlock allocated.
static inline void hpvm_sanlk_free(void *_Nullable pointer) { free(pointer); }

#endif
