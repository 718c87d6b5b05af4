/*
 * batchperf: a batched DNS-over-UDP load client (built at bench time with cc).
 *
 *   batchperf -s ADDR -p PORT -d FILE [-l SECONDS] [-n RUNS] [-q INFLIGHT] [-Q QPS [-S]] [-c SOCKETS] [-t TIMEOUT_MS] [-L SLOWLOG [-T US]]
 *
 * Queries (`name TYPE` per line, A/AAAA/TXT/MX/NS/PTR/CNAME/SOA/ANY) are
 * encoded once. Sends with sendmmsg and receives with recvmmsg, 64 at a
 * time, keeping INFLIGHT queries outstanding (or sending at a fixed QPS), on
 * SOCKETS sockets (16-bit IDs per socket). Runs for SECONDS or RUNS passes
 * through the file, then waits up to TIMEOUT for the last answers. Prints one
 * JSON object: sent, completed, lost, qps, runSeconds, avgUs, clientCpuUs
 * (its own CPU time, user + system), p50Us, p99Us, p999Us, rcodes.
 * Latency in 1 µs buckets up to 2 s. At a fixed QPS the
 * client spins between sends (exact send times, answers seen at once);
 * with -S it sleeps in ppoll instead, for a core it must share.
 * -L FILE: writes every answer slower than -T µs (default 100) as
 * `a <sent µs since start> <latency µs>`, and every stall of the client's
 * own loop longer than that as `c <µs since start> <stall µs>` (a stalled
 * client inflates the latencies it measures), at most 1,000,000 lines:
 * where a tail comes from (bursts, their period, the client itself). Its
 * first line, `t <CLOCK_MONOTONIC µs at start>`, lets a server-side trace
 * taken on the same clock (perf record -k CLOCK_MONOTONIC) be lined up.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define B 64
#define MAXQ 512
#define HIST 2000001

typedef struct { uint8_t wire[MAXQ]; int len; } Query;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int qtype(const char *t) {
  const char *names[] = {"A", "NS", "CNAME", "SOA", "PTR", "MX", "TXT", "AAAA", "ANY"};
  const int codes[] = {1, 2, 5, 6, 12, 15, 16, 28, 255};
  for (int i = 0; i < 9; i++)
    if (strcasecmp(t, names[i]) == 0) return codes[i];
  return 1;
}

static int encode(const char *name, int type, uint8_t *out) {
  memset(out, 0, 12);
  out[2] = 0x01; /* RD */
  out[5] = 1;
  int n = wire_name(name, out + 12, MAXQ - 12 - 4);
  if (n < 0) return -1;
  int at = 12 + n;
  out[at++] = type >> 8;
  out[at++] = type & 255;
  out[at++] = 0;
  out[at++] = 1;
  return at;
}

int main(int argc, char **argv) {
  const char *addr = "127.0.0.1", *file = NULL;
  int port = 53, runs = 0, nsock = 4, timeout_ms = 1000;
  double seconds = 0, qps = 0;
  int sleepy = 0;
  long inflight_max = 4000;
  const char *slow_path = NULL;
  double slow_us = 100;
  int opt;
  while ((opt = getopt(argc, argv, "s:p:d:l:n:q:Q:c:t:SL:T:")) != -1) {
    switch (opt) {
      case 's': addr = optarg; break;
      case 'p': port = atoi(optarg); break;
      case 'd': file = optarg; break;
      case 'l': seconds = atof(optarg); break;
      case 'n': runs = atoi(optarg); break;
      case 'q': inflight_max = atol(optarg); break;
      case 'Q': qps = atof(optarg); break;
      case 'S': sleepy = 1; break;
      case 'c': nsock = atoi(optarg); break;
      case 't': timeout_ms = atoi(optarg); break;
      case 'L': slow_path = optarg; break;
      case 'T': slow_us = atof(optarg); break;
      default: fprintf(stderr, "usage: see source\n"); return 2;
    }
  }
  if (!file || nsock < 1 || nsock > 64 || (seconds <= 0 && runs <= 0)) {
    fprintf(stderr, "need -d FILE and -l SECONDS or -n RUNS\n");
    return 2;
  }
  FILE *f = fopen(file, "r");
  if (!f) { perror(file); return 1; }
  size_t cap = 1024, nq = 0;
  Query *qs = malloc(cap * sizeof(Query));
  char line[1024], name[512], type[32];
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "%511s %31s", name, type) < 1) continue;
    if (nq == cap) qs = realloc(qs, (cap *= 2) * sizeof(Query));
    int l = encode(name, qtype(type), qs[nq].wire);
    if (l > 0) qs[nq++].len = l;
  }
  fclose(f);
  if (nq == 0) { fprintf(stderr, "no queries\n"); return 1; }

  struct sockaddr_in to = {0};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  if (inet_pton(AF_INET, addr, &to.sin_addr) != 1) { fprintf(stderr, "bad address\n"); return 2; }
  int fds[64];
  for (int i = 0; i < nsock; i++) {
    fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    int big = 8 << 20;
    setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    if (connect(fds[i], (struct sockaddr *)&to, sizeof to) < 0) { perror("connect"); return 1; }
  }
  /* sent time per (socket, id); < 0 = free */
  double *sent_at = malloc(sizeof(double) * 65536 * nsock);
  for (long i = 0; i < 65536L * nsock; i++) sent_at[i] = -1;
  uint16_t next_id[64] = {0};
  uint32_t *hist = calloc(HIST, sizeof(uint32_t));
  long long sent = 0, completed = 0, lost = 0, rcodes[16] = {0};
  double lat_sum = 0;
  long inflight = 0;
  size_t qi = 0;
  int passes = 0;
  int sending = 1;
  double t0 = now_s(), last_scan = t0, stop_at = seconds > 0 ? t0 + seconds : 1e300, drain_until = 0;
  double tokens = 0, last_tok = t0;
  FILE *slow = NULL;
  long slow_lines = 0;
  if (slow_path && !(slow = fopen(slow_path, "w"))) { perror(slow_path); return 1; }
  if (slow) fprintf(slow, "t %.0f\n", t0 * 1e6);
  double prev_loop = t0;
  static uint8_t sbuf[B][MAXQ], rbuf[B][4096];
  struct mmsghdr sm[B], rm[B];
  struct iovec siov[B], riov[B];
  int sock_rr = 0;
  for (;;) {
    double t = now_s();
    if (slow && (t - prev_loop) * 1e6 > slow_us && slow_lines < 1000000) {
      fprintf(slow, "c %.0f %.0f\n", (prev_loop - t0) * 1e6, (t - prev_loop) * 1e6);
      slow_lines++;
    }
    prev_loop = t;
    if (sending && t >= stop_at) { sending = 0; drain_until = t + timeout_ms / 1000.0; }
    if (!sending && (inflight == 0 || t >= drain_until)) break;
    int did = 0;
    if (sending) {
      long room = inflight_max - inflight;
      if (qps > 0) {
        tokens += (t - last_tok) * qps;
        last_tok = t;
        if (tokens > B) tokens = B;
        if (room > (long)tokens) room = (long)tokens;
      }
      if (room > 0) {
        int s = sock_rr++ % nsock;
        int n = 0;
        while (n < B && n < room) {
          uint16_t id = next_id[s];
          if (sent_at[(long)s * 65536 + id] >= 0) break; /* wrapped onto an outstanding query */
          next_id[s]++;
          Query *q = &qs[qi];
          memcpy(sbuf[n], q->wire, q->len);
          sbuf[n][0] = id >> 8;
          sbuf[n][1] = id & 255;
          siov[n].iov_base = sbuf[n];
          siov[n].iov_len = q->len;
          memset(&sm[n], 0, sizeof sm[n]);
          sm[n].msg_hdr.msg_iov = &siov[n];
          sm[n].msg_hdr.msg_iovlen = 1;
          sent_at[(long)s * 65536 + id] = t;
          n++;
          if (++qi == nq) {
            qi = 0;
            if (runs > 0 && ++passes >= runs) { sending = 0; drain_until = t + timeout_ms / 1000.0; break; }
          }
        }
        if (n > 0) {
          int r = sendmmsg(fds[s], sm, n, 0);
          if (r < 0) r = 0;
          for (int k = r; k < n; k++) { /* not sent: free the ids again */
            uint16_t id = (sbuf[k][0] << 8) | sbuf[k][1];
            sent_at[(long)s * 65536 + id] = -1;
          }
          if (r < n) { next_id[s] -= (uint16_t)(n - r); }
          sent += r;
          inflight += r;
          if (qps > 0) tokens -= r;
          did += r;
        }
      }
    }
    for (int s = 0; s < nsock; s++) {
      recv_prepare(rm, riov, &rbuf[0][0], sizeof rbuf[0], B, NULL);
      int r = recvmmsg(fds[s], rm, B, MSG_DONTWAIT, NULL);
      if (r <= 0) continue;
      double tr = now_s();
      for (int k = 0; k < r; k++) {
        if (rm[k].msg_len < 12) continue;
        uint16_t id = (rbuf[k][0] << 8) | rbuf[k][1];
        double *slot = &sent_at[(long)s * 65536 + id];
        if (*slot < 0) continue; /* late or duplicate */
        double us = (tr - *slot) * 1e6;
        if (slow && us > slow_us && slow_lines < 1000000) {
          fprintf(slow, "a %.0f %.0f\n", (*slot - t0) * 1e6, us);
          slow_lines++;
        }
        *slot = -1;
        inflight--;
        completed++;
        lat_sum += us;
        long b = (long)(us + 0.5);
        hist[b < HIST - 1 ? b : HIST - 1]++;
        rcodes[rbuf[k][3] & 15]++;
      }
      did += r;
    }
    if (t - last_scan > 0.1) { /* expire queries older than the timeout */
      last_scan = t;
      double limit = t - timeout_ms / 1000.0;
      for (long i = 0; i < 65536L * nsock; i++)
        if (sent_at[i] >= 0 && sent_at[i] < limit) { sent_at[i] = -1; inflight--; lost++; }
    }
    if (!did) {
      struct pollfd p[64];
      for (int s = 0; s < nsock; s++) { p[s].fd = fds[s]; p[s].events = POLLIN; }
      if (qps > 0 && sleepy) {
        /* -S: sleep until the next query is due or an answer arrives instead of spinning (the core is shared, e.g. with Redis;
           the client's own wake-up latency is then part of every measured latency). */
        double wait = sending ? (1.0 - tokens) / qps : 0.001;
        if (wait < 20e-6) wait = 20e-6;
        if (wait > 0.001) wait = 0.001;
        struct timespec ts = {0, (long)(wait * 1e9)};
        ppoll(p, nsock, &ts, NULL);
      } else {
        poll(p, nsock, qps > 0 ? 0 : 1);
      }
    }
  }
  if (slow) fclose(slow);
  lost += inflight;
  double run = (sending ? now_s() : (stop_at < 1e299 ? stop_at : now_s())) - t0;
  if (run <= 0) run = now_s() - t0;
  long long target[3] = {(completed * 50 + 99) / 100, (completed * 99 + 99) / 100, (completed * 999 + 999) / 1000};
  long pct[3] = {-1, -1, -1};
  long long seen = 0;
  for (long i = 0, j = 0; i < HIST && j < 3; i++) {
    seen += hist[i];
    while (j < 3 && completed > 0 && seen >= target[j]) pct[j++] = i;
  }
  const char *rn[16] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE", "R11", "R12", "R13", "R14", "R15"};
  printf("{\"sent\":%lld,\"completed\":%lld,\"lost\":%lld,\"qps\":%.1f,\"runSeconds\":%.3f,\"avgUs\":%.1f,", sent, completed, lost, completed / run, run, completed ? lat_sum / completed : 0.0);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu_us = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
  printf("\"clientCpuUs\":%.0f,", cpu_us);
  printf("\"p50Us\":%ld,\"p99Us\":%ld,\"p999Us\":%ld,\"rcodes\":{", pct[0], pct[1], pct[2]);
  int first = 1;
  for (int i = 0; i < 16; i++)
    if (rcodes[i]) { printf("%s\"%s\":%lld", first ? "" : ",", rn[i], rcodes[i]); first = 0; }
  printf("}}\n");
  return 0;
}
