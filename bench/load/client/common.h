/*
 * common.h: what the bench's C programs (client/batchperf.c,
 * servers/raw-mmsg.c) share: a name in DNS wire form, and the receive
 * vectors of one recvmmsg call.
 */
#ifndef HEIMDALL_BENCH_COMMON_H
#define HEIMDALL_BENCH_COMMON_H
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

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

/* Points `n` receive headers at `n` buffers of `size` octets (and at `names` for the senders' addresses, when not NULL). */
static void recv_prepare(struct mmsghdr *m, struct iovec *iov, uint8_t *bufs, size_t size, int n, struct sockaddr_in *names) {
  for (int k = 0; k < n; k++) {
    iov[k].iov_base = bufs + (size_t)k * size;
    iov[k].iov_len = size;
    memset(&m[k], 0, sizeof m[k]);
    m[k].msg_hdr.msg_iov = &iov[k];
    m[k].msg_hdr.msg_iovlen = 1;
    if (names) {
      m[k].msg_hdr.msg_name = &names[k];
      m[k].msg_hdr.msg_namelen = sizeof names[k];
    }
  }
}
#endif
