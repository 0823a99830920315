#ifndef SENDARIX_STRHASH_H
#define SENDARIX_STRHASH_H

/*
 * strhash - FNV-1a of a string, for the in-memory hash tables (queue
 * IDs, destinations, client addresses, parameter names, greylist keys).
 * Not for anything an attacker may aim collisions at in bulk, and never
 * stored: the value may differ between builds. Take it modulo the table
 * size (the low bits are the same in 32 and 64 bits).
 */

static inline unsigned long
strhash(const char *s)
{
	unsigned long h = 2166136261UL;

	while (*s)
		h = (h ^ (unsigned char) *s++) * 16777619UL;
	return (h);
}

#endif
