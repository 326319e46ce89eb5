/*
 * CRC32C (Castagnoli; RFC 3720's iSCSI checksum, S3's
 * x-amz-checksum-crc32c): the remote mount's check that the server got
 * the bytes it sent, cheaper than a SHA-256 of them (crc32c.c).
 */
#ifndef SPEECHFS_CRC32C_I_H
#define SPEECHFS_CRC32C_I_H

#include <stddef.h>
#include <stdint.h>

/*
 * The CRC32C of data[len] following the bytes whose CRC32C is crc (0 at
 * the start): crc32c(a + b) = sfsi_crc32c(sfsi_crc32c(0, a), b).
 */
uint32_t sfsi_crc32c(uint32_t crc, const void *data, size_t len);

#endif
