/* flood <port> <count> [seed]: sends `count` random datagrams (0..1500 random
 * bytes; one in 8 shaped like a DNS query header) to 127.0.0.1:<port> with
 * sendmmsg, 64 at a time, from 16 source sockets. Does not read answers. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static unsigned long long s = 88172645463325252ULL;
static unsigned long long rnd(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  int port = atoi(argv[1]);
  long count = atol(argv[2]);
  if (argc > 3) s ^= strtoull(argv[3], NULL, 10) * 2654435761ULL;
  struct sockaddr_in to = {0};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fds[16];
  for (int i = 0; i < 16; i++) {
    fds[i] = socket(AF_INET, SOCK_DGRAM, 0);
    if (fds[i] < 0) return 1;
    int small = 4096;
    setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  }
  static unsigned char data[64][1500];
  struct mmsghdr m[64];
  struct iovec iov[64];
  long sent = 0;
  while (sent < count) {
    int n = count - sent < 64 ? (int)(count - sent) : 64;
    for (int i = 0; i < n; i++) {
      size_t len = rnd() % 1501;
      if (rnd() % 4 == 0) len = rnd() % 64;
      for (size_t k = 0; k < len; k += 8) {
        unsigned long long r = rnd();
        memcpy(data[i] + k, &r, len - k < 8 ? len - k : 8);
      }
      if (len >= 12 && rnd() % 8 == 0) { data[i][2] = 1; data[i][4] = 0; data[i][5] = 1; }
      iov[i].iov_base = data[i];
      iov[i].iov_len = len;
      memset(&m[i], 0, sizeof m[i]);
      m[i].msg_hdr.msg_iov = &iov[i];
      m[i].msg_hdr.msg_iovlen = 1;
      m[i].msg_hdr.msg_name = &to;
      m[i].msg_hdr.msg_namelen = sizeof to;
    }
    int r = sendmmsg(fds[(sent / 64) % 16], m, n, 0);
    if (r <= 0) { struct timespec ts = {0, 100000}; nanosleep(&ts, NULL); continue; }
    sent += r;
    /* pace a little so the receiver sees most of them */
    if ((sent / 64) % 16 == 0) { struct timespec ts = {0, 200000}; nanosleep(&ts, NULL); }
  }
  printf("%ld\n", sent);
  return 0;
}
