/*
 * wire-name.h: a presentation name ("www.example.com") in DNS wire form,
 * shared by the bench's C programs (client/batchperf.c, servers/raw-mmsg.c).
 */
#ifndef HEIMDALL_BENCH_WIRE_NAME_H
#define HEIMDALL_BENCH_WIRE_NAME_H
#include <stdint.h>
#include <string.h>

/* Writes `name` as labels + root at `out`; returns the octets written, or -1 for an empty or
   over-long label or when more than `room` octets would be needed. */
static int wire_name(const char *name, uint8_t *out, int room) {
  int at = 0;
  const char *p = name;
  while (*p) {
    const char *dot = strchr(p, '.');
    int l = dot ? (int)(dot - p) : (int)strlen(p);
    if (l == 0 || l > 63 || at + l + 2 > room) return -1;
    out[at++] = (uint8_t)l;
    memcpy(out + at, p, l);
    at += l;
    p += l;
    if (*p == '.') p++;
  }
  out[at++] = 0;
  return at;
}
#endif
