#ifndef GUEST_CRC32_H
#define GUEST_CRC32_H

#include "util.h"

/* Continues a zlib-compatible CRC-32: crc32_update(0, buf, len) == zlib.crc32(buf). */
uint32_t crc32_update(uint32_t crc, const void *data, size_t len);

#endif
