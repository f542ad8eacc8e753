/*
 * jkfuzz: a libFuzzer-free fuzz loop for jk_decode, built with
 * AddressSanitizer and UndefinedBehaviorSanitizer (internal/ipcc
 * TestDecoderSanitized builds and runs it).
 *
 *	jkfuzz SEEDS SECONDS RANDSEED
 *
 * SEEDS holds agent messages as u32 big-endian length || body. Each
 * round picks a seed, applies a few random mutations (bit flips, byte
 * sets to interesting values, truncation, extension, splices of another
 * seed, length-head rewrites) and decodes the result from a heap buffer
 * of exactly its size, so that any read past the end is caught. It
 * prints the number of executions and how many were accepted.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jkmsg.h"

#define MAX_SEEDS 256

static uint64_t rng;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

int main(int argc, char **argv)
{
	static uint8_t *seed[MAX_SEEDS];
	static size_t seedlen[MAX_SEEDS];
	static uint8_t work[2 * JK_MAX_FRAME];
	size_t nseeds = 0;
	if (argc != 4) {
		fprintf(stderr, "usage: jkfuzz SEEDS SECONDS RANDSEED\n");
		return 2;
	}
	FILE *f = fopen(argv[1], "rb");
	if (f == NULL) {
		perror("seeds");
		return 2;
	}
	uint8_t h[4];
	while (nseeds < MAX_SEEDS && fread(h, 1, 4, f) == 4) {
		size_t n = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
		if (n == 0 || n > JK_MAX_FRAME)
			return 2;
		seed[nseeds] = malloc(n);
		if (seed[nseeds] == NULL || fread(seed[nseeds], 1, n, f) != n)
			return 2;
		seedlen[nseeds++] = n;
	}
	fclose(f);
	if (nseeds == 0)
		return 2;
	long seconds = strtol(argv[2], NULL, 10);
	rng = strtoull(argv[3], NULL, 10) | 1;
	time_t end = time(NULL) + seconds;
	static const uint8_t interesting[] = {0x00, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1f, 0x40, 0x5b, 0x60, 0x7b, 0x7f,
					      0xa0, 0xa4, 0xbf, 0xc0, 0xf4, 0xf5, 0xf6, 0xf7, 0xff, 0x80, 0xed, 0xf0};
	unsigned long long execs = 0, accepted = 0;
	while (time(NULL) < end) {
		for (int round = 0; round < 10000; round++) {
			size_t s = next() % nseeds;
			size_t n = seedlen[s];
			memcpy(work, seed[s], n);
			int muts = 1 + (int)(next() % 4);
			for (int m = 0; m < muts; m++) {
				size_t pos = n ? next() % n : 0;
				switch (next() % 7) {
				case 0: if (n) work[pos] ^= (uint8_t)(1u << (next() % 8)); break;
				case 1: if (n) work[pos] = interesting[next() % sizeof interesting]; break;
				case 2: if (n) work[pos] = (uint8_t)next(); break;
				case 3: n = n ? next() % n : 0; break; /* truncate */
				case 4: { /* extend */
					size_t add = 1 + next() % 16;
					if (n + add <= sizeof work) {
						for (size_t i = 0; i < add; i++)
							work[n + i] = (uint8_t)next();
						n += add;
					}
					break;
				}
				case 5: { /* splice the tail of another seed */
					size_t o = next() % nseeds, from = next() % seedlen[o];
					size_t len = seedlen[o] - from;
					if (pos + len <= sizeof work) {
						memcpy(work + pos, seed[o] + from, len);
						n = pos + len;
					}
					break;
				}
				case 6: /* a large length head */
					if (n >= 5 && pos + 5 <= n) {
						work[pos] = (uint8_t)((work[pos] & 0xe0) | 0x1a);
						work[pos + 1] = (uint8_t)next();
					}
					break;
				}
			}
			uint8_t *buf = malloc(n ? n : 1);
			if (buf == NULL)
				return 2;
			memcpy(buf, work, n);
			struct jk_msg msg;
			if (jk_decode(buf, n, &msg) == 0)
				accepted++;
			free(buf);
			execs++;
		}
	}
	printf("execs %llu accepted %llu\n", execs, accepted);
	return 0;
}
