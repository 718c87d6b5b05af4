/*
 * raw-mmsg: the floor of a batched UDP DNS server on this machine, for the
 * native-path load test (bench/load/native.ts). Like servers/raw.ts it answers
 * every datagram with precomputed bytes (only the ID patched; no parsing),
 * but in C with recvmmsg/sendmmsg, 64 datagrams per call: what is left is
 * the kernel's per-datagram cost plus a few hundred instructions. No server
 * written on top of the same syscalls can use less CPU per query.
 *
 *   raw-mmsg PORT [NAME]      (binds 127.0.0.1:PORT, prints "listening udp 127.0.0.1:PORT")
 *
 * Built with cc at bench time (lib/batchperf.ts), like the batched client.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../client/common.h"

#define B 64

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: raw-mmsg PORT [NAME]\n"); return 2; }
  int port = atoi(argv[1]);
  const char *name = argc > 2 ? argv[2] : "www.example.com";
  /* Response: header (QR RD RA, 1 question, 1 answer), the question, one A record 192.0.2.1 TTL 3600. */
  uint8_t resp[512];
  size_t n = 0;
  const uint8_t hdr[12] = {0, 0, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0};
  memcpy(resp, hdr, 12);
  n = 12;
  int w = wire_name(name, resp + n, 300);
  if (w < 0) { fprintf(stderr, "bad name\n"); return 2; }
  n += (size_t)w;
  const uint8_t tail[] = {0, 1, 0, 1, 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, 1};
  memcpy(resp + n, tail, sizeof tail);
  n += sizeof tail;

  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  int one = 1, size = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); return 1; }
  socklen_t al = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &al);
  printf("listening udp 127.0.0.1:%d\n", ntohs(a.sin_port));
  fflush(stdout);

  static uint8_t rbuf[B][512], sbuf[B][512];
  struct mmsghdr rm[B], sm[B];
  struct iovec riov[B], siov[B];
  struct sockaddr_in from[B];
  for (;;) {
    recv_prepare(rm, riov, &rbuf[0][0], sizeof rbuf[0], B, from);
    int r = recvmmsg(fd, rm, B, 0, NULL);
    if (r <= 0) continue;
    int m = 0;
    for (int k = 0; k < r; k++) {
      if (rm[k].msg_len < 12) continue;
      memcpy(sbuf[m], resp, n);
      sbuf[m][0] = rbuf[k][0];
      sbuf[m][1] = rbuf[k][1];
      siov[m].iov_base = sbuf[m];
      siov[m].iov_len = n;
      memset(&sm[m], 0, sizeof sm[m]);
      sm[m].msg_hdr.msg_iov = &siov[m];
      sm[m].msg_hdr.msg_iovlen = 1;
      sm[m].msg_hdr.msg_name = &from[k];
      sm[m].msg_hdr.msg_namelen = rm[k].msg_hdr.msg_namelen;
      m++;
    }
    for (int off = 0; off < m;) {
      int s = sendmmsg(fd, sm + off, m - off, 0);
      if (s <= 0) break;
      off += s;
    }
  }
}
