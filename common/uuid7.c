/*
 * uuid7.c - UUID version 7 (RFC 9562) generation, formatting and parsing.
 *
 * Layout (big-endian): 48-bit Unix ms timestamp | 4-bit version (7) |
 * 12-bit rand_a | 2-bit variant (10) | 62-bit rand_b.
 *
 * Monotonicity (RFC 9562 §6.2, method 1): rand_a is a counter. When the
 * millisecond advances it is reseeded randomly with its top bit clear, so
 * at least 2048 ids fit in one millisecond before it overflows; on overflow
 * the timestamp is advanced by 1 ms instead of waiting for the clock. If
 * the clock steps backwards we keep the last timestamp and count on, so the
 * ids of one process never go backwards. rand_b is fresh randomness for
 * every id, which keeps ids unguessable across processes.
 */
#include "uuid7.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <time.h>

enum {
	UUID7_BYTES = 16,
	UUID7_TS_BYTES = 6, /* 48-bit timestamp in b[0..5] */
	UUID7_VERSION = 7,
	UUID7_VERSION_SHIFT = 4,
	UUID7_NIBBLE_MASK = 0x0F,
	UUID7_VARIANT_MASK = 0xC0,        /* top two bits of b[8] */
	UUID7_VARIANT_RFC = 0x80,         /* variant 10xx */
	UUID7_RAND_B_TOP_MASK = 0x3F,     /* the 6 rand_b bits left in b[8] */
	UUID7_COUNTER_MAX = 0x0FFF,       /* 12-bit rand_a */
	UUID7_COUNTER_SEED_MASK = 0x07FF, /* seed with the top bit clear */
	UUID7_STR_CHARS = 36,
	UUID7_BITS_PER_BYTE = 8,
	UUID7_NIBBLE_BITS = 4,
	UUID7_HEX_ALPHA_VALUE = 10, /* value of hex digit 'a' */
	UUID7_VER_BYTE = 6,         /* version nibble + rand_a high bits */
	UUID7_RAND_A_LO_BYTE = 7,
	UUID7_VAR_BYTE = 8,   /* variant bits + rand_b high bits */
	UUID7_RAND_B_OFF = 2, /* rnd[0..1] feed rand_a, rnd[2..9] rand_b */
	UUID7_RAND_B_LEN = UUID7_RANDOM_LEN - UUID7_RAND_B_OFF,
};

static const int64_t UUID7_TS_MAX = ((int64_t)1 << 48) - 1;
static const int64_t UUID7_NS_PER_MS = 1000000;
static const int64_t UUID7_MS_PER_S = 1000;

/* Positions of the hyphens in the canonical form. */
static const int uuid7_hyphen_pos[] = {8, 13, 18, 23};

static const char uuid7_hex_digits[] = "0123456789abcdef";

static pthread_mutex_t uuid7_lock = PTHREAD_MUTEX_INITIALIZER;
static struct uuid7_clock uuid7_global_clock; /* guarded by uuid7_lock */

static int64_t uuid7_clamp_ts(int64_t ms)
{
	if (ms < 0)
		return 0;
	if (ms > UUID7_TS_MAX)
		return UUID7_TS_MAX;
	return ms;
}

/* Writes timestamp, version, the 12-bit rand_a, variant and rand_b. */
static void uuid7_pack(uuid_t7 *out, int64_t ms, uint16_t rand_a,
		       const uint8_t rand_b[UUID7_RAND_B_LEN])
{
	const uint64_t ts = (uint64_t)ms & (uint64_t)UUID7_TS_MAX;
	for (int i = 0; i < UUID7_TS_BYTES; i++) {
		const int shift = (UUID7_TS_BYTES - 1 - i) * UUID7_BITS_PER_BYTE;
		out->b[i] = (uint8_t)(ts >> shift);
	}
	rand_a &= UUID7_COUNTER_MAX;
	out->b[UUID7_VER_BYTE] =
		(uint8_t)((UUID7_VERSION << UUID7_VERSION_SHIFT) | (rand_a >> UUID7_BITS_PER_BYTE));
	out->b[UUID7_RAND_A_LO_BYTE] = (uint8_t)rand_a;
	out->b[UUID7_VAR_BYTE] = (uint8_t)(UUID7_VARIANT_RFC | (rand_b[0] & UUID7_RAND_B_TOP_MASK));
	for (int i = 1; i < UUID7_RAND_B_LEN; i++)
		out->b[UUID7_VAR_BYTE + i] = rand_b[i];
}

static uint16_t uuid7_counter_seed(const uint8_t rnd[UUID7_RANDOM_LEN])
{
	return (uint16_t)(((unsigned)rnd[0] << UUID7_BITS_PER_BYTE | rnd[1]) &
			  UUID7_COUNTER_SEED_MASK);
}

void uuid7_from_unix_ms(uuid_t7 *out, int64_t unix_ms, const uint8_t rnd[UUID7_RANDOM_LEN])
{
	const uint16_t rand_a = (uint16_t)((unsigned)rnd[0] << UUID7_BITS_PER_BYTE | rnd[1]);
	uuid7_pack(out, unix_ms < 0 ? 0 : unix_ms, rand_a, rnd + UUID7_RAND_B_OFF);
}

void uuid7_next(struct uuid7_clock *st, int64_t now_ms, const uint8_t rnd[UUID7_RANDOM_LEN],
		uuid_t7 *out)
{
	now_ms = uuid7_clamp_ts(now_ms);
	if (!st->started || now_ms > st->last_ms) {
		st->started = true;
		st->last_ms = now_ms;
		st->counter = uuid7_counter_seed(rnd);
	} else if (st->counter < UUID7_COUNTER_MAX) {
		st->counter++;
	} else {
		/* Counter exhausted within this ms: borrow the next millisecond. */
		if (st->last_ms < UUID7_TS_MAX)
			st->last_ms++;
		st->counter = uuid7_counter_seed(rnd);
	}
	uuid7_pack(out, st->last_ms, st->counter, rnd + UUID7_RAND_B_OFF);
}

static int64_t uuid7_now_ms(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return 0; /* cannot happen for CLOCK_REALTIME; monotonicity still holds */
	return (int64_t)ts.tv_sec * UUID7_MS_PER_S + ts.tv_nsec / UUID7_NS_PER_MS;
}

bool uuid7_generate(uuid_t7 *out)
{
	uint8_t rnd[UUID7_RANDOM_LEN];
	if (RAND_bytes(rnd, (int)sizeof rnd) != 1)
		return false;

	/* Read the clock inside the lock so the timestamps fed to uuid7_next
     * are in lock order; otherwise a preempted thread could hand in an
     * older time, which would still be safe but wastes counter space. */
	pthread_mutex_lock(&uuid7_lock);
	uuid7_next(&uuid7_global_clock, uuid7_now_ms(), rnd, out);
	pthread_mutex_unlock(&uuid7_lock);
	return true;
}

int64_t uuid7_unix_ms(const uuid_t7 *u)
{
	uint64_t ts = 0;
	for (int i = 0; i < UUID7_TS_BYTES; i++)
		ts = ts << UUID7_BITS_PER_BYTE | u->b[i];
	return (int64_t)ts;
}

static bool uuid7_is_hyphen_pos(int i)
{
	for (size_t k = 0; k < sizeof uuid7_hyphen_pos / sizeof uuid7_hyphen_pos[0]; k++)
		if (uuid7_hyphen_pos[k] == i)
			return true;
	return false;
}

void uuid_format(const uuid_t7 *u, char out[UUID_STR_LEN])
{
	int pos = 0;
	for (int i = 0; i < UUID7_BYTES; i++) {
		if (uuid7_is_hyphen_pos(pos))
			out[pos++] = '-';
		out[pos++] = uuid7_hex_digits[u->b[i] >> UUID7_NIBBLE_BITS];
		out[pos++] = uuid7_hex_digits[u->b[i] & UUID7_NIBBLE_MASK];
	}
	out[pos] = '\0';
}

/* Value of one hex digit, or -1. */
static int uuid7_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + UUID7_HEX_ALPHA_VALUE;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + UUID7_HEX_ALPHA_VALUE;
	return -1;
}

bool uuid_parse(const char *s, uuid_t7 *out)
{
	if (s == NULL)
		return false;
	uuid_t7 tmp;
	int byte = 0;
	/* A NUL before position 36 fails both the hyphen and the hex test, so
     * we never read past the end of a short string. */
	for (int i = 0; i < UUID7_STR_CHARS;) {
		if (uuid7_is_hyphen_pos(i)) {
			if (s[i] != '-')
				return false;
			i++;
			continue;
		}
		const int hi = uuid7_hex_value(s[i]);
		if (hi < 0)
			return false;
		const int lo = uuid7_hex_value(s[i + 1]);
		if (lo < 0)
			return false;
		tmp.b[byte++] = (uint8_t)(hi << UUID7_NIBBLE_BITS | lo);
		i += 2;
	}
	if (s[UUID7_STR_CHARS] != '\0')
		return false;
	*out = tmp;
	return true;
}

bool uuid_is_v7(const uuid_t7 *u)
{
	return (u->b[UUID7_VER_BYTE] >> UUID7_VERSION_SHIFT) == UUID7_VERSION &&
	       (u->b[UUID7_VAR_BYTE] & UUID7_VARIANT_MASK) == UUID7_VARIANT_RFC;
}
