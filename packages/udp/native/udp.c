/*
 * @heimdall/udp: batched UDP for DNS on Linux.
 *
 * One socket per instance (SO_REUSEPORT on request), read with recvmmsg
 * (up to BATCH datagrams per syscall, into caller-provided, reused buffers),
 * answered with sendmmsg. JavaScript gets ONE call per batch: `onBatch(n)`;
 * it reads the datagrams from `in` (slot i at i * slot) and their metadata
 * from `meta` (one META-byte record per datagram, see below), writes the
 * synchronous answers into `out` (answer j at j * outSlot) with one 8-byte
 * entry per answer in `outMeta` (u16 datagram index, u16 0, u32 length) and
 * returns how many there are; they leave in one sendmmsg. Asynchronous
 * answers go out with send(h, buf, len, record): a copy of the 48-byte meta
 * record of their query.
 *
 * Every record handed to JavaScript is validated here: length <= slot and
 * not truncated by the kernel, a well-formed address of the socket's family,
 * a non-zero port; anything else is flagged invalid (flags bit 0 clear).
 * Every length and record coming back from JavaScript is validated too.
 *
 * Meta record (little endian), META = 48 bytes:
 *   0  u16 length          2  u8 family (4|6)   3  u8 flags (1 valid, 2 local address known,
 *                                                  4 drop count known)
 *   4  u16 remote port     6  u16 0
 *   8  16 bytes remote address (IPv4 in the first 4; IPv4-mapped reported as IPv4)
 *   24 16 bytes local address the datagram arrived at (IP_PKTINFO / IPV6_PKTINFO)
 *   40 u32 interface index
 *   44 u32 datagrams the kernel dropped on this socket so far for want of receive
 *          buffer (SO_RXQ_OVFL, wraps at 2^32), as of this datagram
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define BATCH 64
#define META 48
#define OUTMETA 8
#define ROUNDS 8 /* batches per wakeup before yielding to the event loop */
#define CTL 128 /* room for IPV6_PKTINFO (40) and SO_RXQ_OVFL (24) control messages */

typedef struct {
  napi_env env;
  int fd;
  int v6;
  int wildcard; /* bound to 0.0.0.0 / :: : reply from the arrival address */
  int polling;
  int closing;
  int closed;    /* uv close callback ran, fd closed */
  int finalized; /* JS handle collected */
  int in_cb;
  int teardown; /* the environment is going away: Node-API frees the references itself */
  uv_poll_t poll;
  napi_ref cb_ref, in_ref, meta_ref, out_ref, outmeta_ref;
  napi_async_context actx;
  uint8_t *in, *meta, *out, *outmeta;
  size_t slot, out_slot;
  struct mmsghdr rmsg[BATCH];
  struct iovec riov[BATCH];
  struct sockaddr_storage raddr[BATCH];
  uint8_t rctl[BATCH][CTL];
  struct mmsghdr smsg[BATCH];
  struct iovec siov[BATCH];
  struct sockaddr_in6 saddr[BATCH];
  uint8_t sctl[BATCH][CTL];
  double received, batches, invalid, sent, send_dropped, send_errors, calls;
} Sock;

#define CHECK(call)                                                      \
  do {                                                                   \
    if ((call) != napi_ok) {                                             \
      napi_throw_error(env, "EINTERNAL", "napi call failed: " #call);    \
      return NULL;                                                       \
    }                                                                    \
  } while (0)

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_value m, e, c;
  const char *code = err == EADDRINUSE ? "EADDRINUSE" : err == EACCES ? "EACCES" : err == EADDRNOTAVAIL ? "EADDRNOTAVAIL" : "ESYSCALL";
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &c);
  napi_create_error(env, c, m, &e);
  napi_value en;
  napi_create_int32(env, err, &en);
  napi_set_named_property(env, e, "errno", en);
  napi_throw(env, e);
  return NULL;
}

static void put16(uint8_t *p, unsigned v) { p[0] = v & 255; p[1] = (v >> 8) & 255; }
static void put32(uint8_t *p, uint32_t v) { p[0] = v & 255; p[1] = (v >> 8) & 255; p[2] = (v >> 16) & 255; p[3] = v >> 24; }
static unsigned get16(const uint8_t *p) { return p[0] | (p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return p[0] | (p[1] << 8) | (p[2] << 16) | ((uint32_t)p[3] << 24); }

static const uint8_t V4MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Fills record `rec` for received message i; returns 1 when valid. */
static int describe(Sock *s, int i, uint8_t *rec) {
  struct msghdr *h = &s->rmsg[i].msg_hdr;
  unsigned len = s->rmsg[i].msg_len;
  memset(rec, 0, META);
  if ((h->msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 || len > s->slot || len > 65535) return 0;
  const struct sockaddr_storage *a = &s->raddr[i];
  if (!s->v6) {
    if (h->msg_namelen != sizeof(struct sockaddr_in) || a->ss_family != AF_INET) return 0;
    const struct sockaddr_in *sin = (const struct sockaddr_in *)a;
    if (sin->sin_port == 0) return 0;
    rec[2] = 4;
    put16(rec + 4, ntohs(sin->sin_port));
    memcpy(rec + 8, &sin->sin_addr, 4);
  } else {
    if (h->msg_namelen != sizeof(struct sockaddr_in6) || a->ss_family != AF_INET6) return 0;
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)a;
    if (sin6->sin6_port == 0) return 0;
    put16(rec + 4, ntohs(sin6->sin6_port));
    if (memcmp(sin6->sin6_addr.s6_addr, V4MAPPED, 12) == 0) {
      rec[2] = 4;
      memcpy(rec + 8, sin6->sin6_addr.s6_addr + 12, 4);
    } else {
      rec[2] = 6;
      memcpy(rec + 8, sin6->sin6_addr.s6_addr, 16);
    }
  }
  for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c != NULL; c = CMSG_NXTHDR(h, c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO && c->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
      struct in_pktinfo pi;
      memcpy(&pi, CMSG_DATA(c), sizeof pi);
      memcpy(rec + 24, &pi.ipi_addr, 4);
      put32(rec + 40, (uint32_t)pi.ipi_ifindex);
      rec[3] |= 2;
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO && c->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
      struct in6_pktinfo pi;
      memcpy(&pi, CMSG_DATA(c), sizeof pi);
      if (memcmp(pi.ipi6_addr.s6_addr, V4MAPPED, 12) == 0) memcpy(rec + 24, pi.ipi6_addr.s6_addr + 12, 4);
      else memcpy(rec + 24, pi.ipi6_addr.s6_addr, 16);
      put32(rec + 40, (uint32_t)pi.ipi6_ifindex);
      rec[3] |= 2;
    } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL && c->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
      uint32_t dropped;
      memcpy(&dropped, CMSG_DATA(c), sizeof dropped);
      put32(rec + 44, dropped);
      rec[3] |= 4;
    }
  }
  put16(rec, len);
  rec[3] |= 1;
  return 1;
}

/*
 * Destination (and, on a wildcard socket, source) of an answer from a meta
 * record. Returns 0 when the record is not one this socket could have made.
 */
static int destination(Sock *s, const uint8_t *rec, struct msghdr *h, struct sockaddr_in6 *addr, uint8_t *ctl) {
  unsigned family = rec[2], flags = rec[3], port = get16(rec + 4);
  if ((flags & 1) == 0 || (flags & ~7u) != 0 || port == 0 || (family != 4 && family != 6) || (!s->v6 && family != 4)) return 0;
  memset(addr, 0, sizeof *addr);
  h->msg_name = addr;
  h->msg_control = NULL;
  h->msg_controllen = 0;
  h->msg_flags = 0;
  int is_v4 = family == 4;
  if (!s->v6) {
    struct sockaddr_in *sin = (struct sockaddr_in *)addr;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    memcpy(&sin->sin_addr, rec + 8, 4);
    h->msg_namelen = sizeof(struct sockaddr_in);
  } else {
    addr->sin6_family = AF_INET6;
    addr->sin6_port = htons(port);
    if (is_v4) {
      memcpy(addr->sin6_addr.s6_addr, V4MAPPED, 12);
      memcpy(addr->sin6_addr.s6_addr + 12, rec + 8, 4);
    } else {
      memcpy(addr->sin6_addr.s6_addr, rec + 8, 16);
      if (addr->sin6_addr.s6_addr[0] == 0xfe && (addr->sin6_addr.s6_addr[1] & 0xc0) == 0x80) addr->sin6_scope_id = get32(rec + 40);
    }
    h->msg_namelen = sizeof(struct sockaddr_in6);
  }
  if (s->wildcard && (flags & 2) != 0) {
    memset(ctl, 0, CTL);
    h->msg_control = ctl;
    struct cmsghdr *c;
    if (!s->v6) {
      h->msg_controllen = CMSG_SPACE(sizeof(struct in_pktinfo));
      c = CMSG_FIRSTHDR(h);
      c->cmsg_level = IPPROTO_IP;
      c->cmsg_type = IP_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
      struct in_pktinfo pi;
      memset(&pi, 0, sizeof pi);
      memcpy(&pi.ipi_spec_dst, rec + 24, 4);
      memcpy(CMSG_DATA(c), &pi, sizeof pi);
    } else {
      h->msg_controllen = CMSG_SPACE(sizeof(struct in6_pktinfo));
      c = CMSG_FIRSTHDR(h);
      c->cmsg_level = IPPROTO_IPV6;
      c->cmsg_type = IPV6_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(struct in6_pktinfo));
      struct in6_pktinfo pi;
      memset(&pi, 0, sizeof pi);
      if (is_v4) {
        memcpy(pi.ipi6_addr.s6_addr, V4MAPPED, 12);
        memcpy(pi.ipi6_addr.s6_addr + 12, rec + 24, 4);
      } else {
        memcpy(pi.ipi6_addr.s6_addr, rec + 24, 16);
        if (pi.ipi6_addr.s6_addr[0] == 0xfe && (pi.ipi6_addr.s6_addr[1] & 0xc0) == 0x80) pi.ipi6_ifindex = get32(rec + 40);
      }
      memcpy(CMSG_DATA(c), &pi, sizeof pi);
    }
  }
  return 1;
}

/* Sends smsg[0..n): partial sends are continued; a full socket buffer drops the rest (UDP). */
static void flush(Sock *s, int n) {
  int at = 0;
  while (at < n) {
    int r = sendmmsg(s->fd, s->smsg + at, (unsigned)(n - at), MSG_DONTWAIT);
    if (r > 0) {
      s->sent += r;
      at += r;
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
      s->send_dropped += n - at;
      return;
    }
    /* This message cannot be sent (unreachable, refused...): skip it. */
    s->send_errors++;
    at++;
  }
}

static void sock_free(Sock *s) {
  free(s);
}

static void on_closed(uv_handle_t *h) {
  Sock *s = (Sock *)h->data;
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
  s->closed = 1;
  napi_env env = s->env;
  if (s->teardown) {
    if (s->finalized) sock_free(s);
    return;
  }
  napi_ref *refs[] = {&s->cb_ref, &s->in_ref, &s->meta_ref, &s->out_ref, &s->outmeta_ref};
  for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
    if (*refs[i] != NULL) napi_delete_reference(env, *refs[i]);
    *refs[i] = NULL;
  }
  if (s->actx != NULL) napi_async_destroy(env, s->actx);
  s->actx = NULL;
  if (s->finalized) sock_free(s);
}

static void on_teardown(void *arg);

static void start_close(Sock *s) {
  if (s->closing) return;
  s->closing = 1;
  if (s->polling) uv_poll_stop(&s->poll);
  s->polling = 0;
  /* The port is free when close() returns (a stopped poll handle no longer watches the fd). */
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
  if (!s->teardown) napi_remove_env_cleanup_hook(s->env, on_teardown, s);
  uv_close((uv_handle_t *)&s->poll, on_closed);
}

static void on_teardown(void *arg) {
  Sock *s = (Sock *)arg;
  s->teardown = 1;
  start_close(s);
}

static void on_readable(uv_poll_t *p, int status, int events) {
  Sock *s = (Sock *)p->data;
  (void)events;
  if (status < 0 || s->closing) return;
  napi_env env = s->env;
  for (int round = 0; round < ROUNDS && s->polling && !s->closing; round++) {
    for (int i = 0; i < BATCH; i++) {
      struct msghdr *h = &s->rmsg[i].msg_hdr;
      s->riov[i].iov_base = s->in + (size_t)i * s->slot;
      s->riov[i].iov_len = s->slot;
      h->msg_iov = &s->riov[i];
      h->msg_iovlen = 1;
      h->msg_name = &s->raddr[i];
      h->msg_namelen = sizeof(struct sockaddr_storage);
      h->msg_control = s->rctl[i];
      h->msg_controllen = CTL;
      h->msg_flags = 0;
    }
    int n = recvmmsg(s->fd, s->rmsg, BATCH, MSG_DONTWAIT, NULL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    s->received += n;
    s->batches++;
    for (int i = 0; i < n; i++) {
      if (!describe(s, i, s->meta + (size_t)i * META)) s->invalid++;
    }
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) return;
    napi_value cb, recv, argv[1], result;
    uint32_t answers = 0;
    int ok = napi_get_reference_value(env, s->cb_ref, &cb) == napi_ok && cb != NULL;
    if (ok) {
      napi_get_global(env, &recv);
      napi_create_uint32(env, (uint32_t)n, &argv[0]);
      s->in_cb = 1;
      s->calls++;
      napi_status st = napi_make_callback(env, s->actx, recv, cb, 1, argv, &result);
      s->in_cb = 0;
      if (st == napi_ok) {
        if (napi_get_value_uint32(env, result, &answers) != napi_ok) answers = 0;
      } else {
        bool pending = false;
        napi_is_exception_pending(env, &pending);
        if (pending) {
          napi_value err;
          napi_get_and_clear_last_exception(env, &err);
          napi_fatal_exception(env, err);
        }
        answers = 0;
      }
    }
    napi_close_handle_scope(env, scope);
    if (s->closing) return;
    if (answers > (uint32_t)n) answers = 0; /* a broken caller: send nothing */
    int m = 0;
    for (uint32_t j = 0; j < answers; j++) {
      const uint8_t *e = s->outmeta + (size_t)j * OUTMETA;
      unsigned idx = get16(e);
      uint32_t len = get32(e + 4);
      if (idx >= (unsigned)n || len == 0 || len > s->out_slot || get16(e + 2) != 0) {
        s->send_errors++;
        continue;
      }
      struct msghdr *h = &s->smsg[m].msg_hdr;
      if (!destination(s, s->meta + (size_t)idx * META, h, &s->saddr[m], s->sctl[m])) {
        s->send_errors++;
        continue;
      }
      s->siov[m].iov_base = s->out + (size_t)j * s->out_slot;
      s->siov[m].iov_len = len;
      h->msg_iov = &s->siov[m];
      h->msg_iovlen = 1;
      m++;
    }
    if (m > 0) flush(s, m);
    if (n < BATCH) break;
  }
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  Sock *s = (Sock *)data;
  s->finalized = 1;
  if (s->closed) sock_free(s);
  else start_close(s);
}

static int get_prop(napi_env env, napi_value obj, const char *name, napi_value *out) {
  bool has = false;
  if (napi_has_named_property(env, obj, name, &has) != napi_ok || !has) return 0;
  if (napi_get_named_property(env, obj, name, out) != napi_ok) return 0;
  napi_valuetype t;
  napi_typeof(env, *out, &t);
  return t != napi_undefined && t != napi_null;
}

static int get_bool(napi_env env, napi_value obj, const char *name) {
  napi_value v;
  bool b = false;
  if (!get_prop(env, obj, name, &v)) return 0;
  napi_get_value_bool(env, v, &b);
  return b;
}

static int get_int(napi_env env, napi_value obj, const char *name, int64_t *out) {
  napi_value v;
  if (!get_prop(env, obj, name, &v)) return 0;
  return napi_get_value_int64(env, v, out) == napi_ok;
}

static int get_buffer(napi_env env, napi_value obj, const char *name, size_t need, uint8_t **data, napi_ref *ref) {
  napi_value v;
  bool is = false;
  size_t len = 0;
  if (!get_prop(env, obj, name, &v) || napi_is_buffer(env, v, &is) != napi_ok || !is) return 0;
  if (napi_get_buffer_info(env, v, (void **)data, &len) != napi_ok || len < need) return 0;
  return napi_create_reference(env, v, 1, ref) == napi_ok;
}

/* open({ address, port, reusePort, reuseAddr, ipv6Only, recvBufferSize, sendBufferSize, slot, outSlot, in, meta, out, outMeta, onBatch }) */
static napi_value Open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, NULL, "open(options)");
    return NULL;
  }
  napi_value o = argv[0], v;
  char address[64] = {0};
  size_t alen = 0;
  if (!get_prop(env, o, "address", &v) || napi_get_value_string_utf8(env, v, address, sizeof address, &alen) != napi_ok) {
    napi_throw_type_error(env, NULL, "address must be a string");
    return NULL;
  }
  int64_t port = -1, slot = 0, out_slot = 0, rcv = 0, snd = 0;
  if (!get_int(env, o, "port", &port) || port < 0 || port > 65535) {
    napi_throw_range_error(env, NULL, "port must be 0..65535");
    return NULL;
  }
  if (!get_int(env, o, "slot", &slot) || slot < 512 || slot > 65535 || !get_int(env, o, "outSlot", &out_slot) || out_slot < 512 || out_slot > 65535) {
    napi_throw_range_error(env, NULL, "slot and outSlot must be 512..65535");
    return NULL;
  }
  get_int(env, o, "recvBufferSize", &rcv);
  get_int(env, o, "sendBufferSize", &snd);
  struct sockaddr_in6 sa6;
  struct sockaddr_in sa4;
  memset(&sa6, 0, sizeof sa6);
  memset(&sa4, 0, sizeof sa4);
  int v6;
  if (inet_pton(AF_INET, address, &sa4.sin_addr) == 1) {
    v6 = 0;
    sa4.sin_family = AF_INET;
    sa4.sin_port = htons((uint16_t)port);
  } else if (inet_pton(AF_INET6, address, &sa6.sin6_addr) == 1) {
    v6 = 1;
    sa6.sin6_family = AF_INET6;
    sa6.sin6_port = htons((uint16_t)port);
  } else {
    napi_throw_type_error(env, NULL, "address must be an IPv4 or IPv6 literal");
    return NULL;
  }
  Sock *s = (Sock *)calloc(1, sizeof(Sock));
  if (s == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  s->env = env;
  s->fd = -1;
  s->v6 = v6;
  s->slot = (size_t)slot;
  s->out_slot = (size_t)out_slot;
  s->wildcard = v6 ? memcmp(&sa6.sin6_addr, &in6addr_any, sizeof(struct in6_addr)) == 0 : sa4.sin_addr.s_addr == htonl(INADDR_ANY);
  if (!get_buffer(env, o, "in", (size_t)BATCH * s->slot, &s->in, &s->in_ref) || !get_buffer(env, o, "meta", BATCH * META, &s->meta, &s->meta_ref) ||
      !get_buffer(env, o, "out", (size_t)BATCH * s->out_slot, &s->out, &s->out_ref) || !get_buffer(env, o, "outMeta", BATCH * OUTMETA, &s->outmeta, &s->outmeta_ref)) {
    napi_ref refs[] = {s->in_ref, s->meta_ref, s->out_ref, s->outmeta_ref};
    for (int i = 0; i < 4; i++)
      if (refs[i]) napi_delete_reference(env, refs[i]);
    free(s);
    napi_throw_range_error(env, NULL, "in, meta, out and outMeta must be Buffers of 64 slots");
    return NULL;
  }
  napi_valuetype t;
  if (!get_prop(env, o, "onBatch", &v) || napi_typeof(env, v, &t) != napi_ok || t != napi_function) {
    napi_ref refs[] = {s->in_ref, s->meta_ref, s->out_ref, s->outmeta_ref};
    for (int i = 0; i < 4; i++) napi_delete_reference(env, refs[i]);
    free(s);
    napi_throw_type_error(env, NULL, "onBatch must be a function");
    return NULL;
  }
  napi_create_reference(env, v, 1, &s->cb_ref);

  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int err = 0;
  const char *what = "socket";
  if (fd < 0) err = errno;
  int one = 1;
  if (!err && get_bool(env, o, "reuseAddr") && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) err = errno, what = "SO_REUSEADDR";
  if (!err && get_bool(env, o, "reusePort") && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) err = errno, what = "SO_REUSEPORT";
  if (!err && v6) {
    int only = get_bool(env, o, "ipv6Only");
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &only, sizeof only) < 0) err = errno, what = "IPV6_V6ONLY";
    if (!err && setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one) < 0) err = errno, what = "IPV6_RECVPKTINFO";
  } else if (!err && setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) < 0) err = errno, what = "IP_PKTINFO";
  /* The kernel's drop count rides on each datagram (meta offset 44); a kernel without it just leaves flag 4 clear. */
  if (!err) (void)setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
  if (!err && rcv > 0) {
    int r = (int)rcv;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &r, sizeof r) < 0) err = errno, what = "SO_RCVBUF";
  }
  if (!err && snd > 0) {
    int r = (int)snd;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &r, sizeof r) < 0) err = errno, what = "SO_SNDBUF";
  }
  if (!err && (v6 ? bind(fd, (struct sockaddr *)&sa6, sizeof sa6) : bind(fd, (struct sockaddr *)&sa4, sizeof sa4)) < 0) err = errno, what = "bind";
  if (err) {
    if (fd >= 0) close(fd);
    napi_ref refs[] = {s->cb_ref, s->in_ref, s->meta_ref, s->out_ref, s->outmeta_ref};
    for (int i = 0; i < 5; i++) napi_delete_reference(env, refs[i]);
    free(s);
    return throw_errno(env, what, err);
  }
  s->fd = fd;
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  uv_poll_init(loop, &s->poll, fd);
  s->poll.data = s;
  napi_value name, resource, handle;
  napi_create_string_utf8(env, "HeimdallUdp", NAPI_AUTO_LENGTH, &name);
  napi_create_object(env, &resource);
  napi_async_init(env, resource, name, &s->actx);
  napi_add_env_cleanup_hook(env, on_teardown, s);
  CHECK(napi_create_external(env, s, finalize, NULL, &handle));
  return handle;
}

static Sock *unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_get_cb_info(env, info, argc, argv, NULL, NULL);
  void *p = NULL;
  napi_valuetype t;
  if (*argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_external || napi_get_value_external(env, argv[0], &p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, NULL, "not a socket handle");
    return NULL;
  }
  return (Sock *)p;
}

static napi_value Start(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  Sock *s = unwrap(env, info, &argc, argv);
  if (s == NULL) return NULL;
  if (!s->closing && !s->polling) {
    int r = uv_poll_start(&s->poll, UV_READABLE, on_readable);
    if (r < 0) return throw_errno(env, "uv_poll_start", -r);
    s->polling = 1;
  }
  return NULL;
}

static napi_value Pause(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  Sock *s = unwrap(env, info, &argc, argv);
  if (s == NULL) return NULL;
  if (s->polling && !s->closing) uv_poll_stop(&s->poll);
  s->polling = 0;
  return NULL;
}

static napi_value Close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  Sock *s = unwrap(env, info, &argc, argv);
  if (s == NULL) return NULL;
  start_close(s);
  return NULL;
}

/* localPort(h) → the bound port. */
static napi_value LocalPort(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  Sock *s = unwrap(env, info, &argc, argv);
  if (s == NULL) return NULL;
  struct sockaddr_storage a;
  socklen_t len = sizeof a;
  if (s->fd < 0 || getsockname(s->fd, (struct sockaddr *)&a, &len) < 0) return throw_errno(env, "getsockname", s->fd < 0 ? EBADF : errno);
  unsigned port = a.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&a)->sin6_port) : ntohs(((struct sockaddr_in *)&a)->sin_port);
  napi_create_uint32(env, port, &out);
  return out;
}

/* send(h, buf, len, record) → 1 sent, 0 dropped (buffer full or closed), -1 invalid arguments or error. */
static napi_value Send(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], out;
  Sock *s = unwrap(env, info, &argc, argv);
  if (s == NULL) return NULL;
  int32_t result = -1;
  uint8_t *buf = NULL, *rec = NULL;
  size_t blen = 0, rlen = 0;
  uint32_t len = 0;
  bool isb = false, isr = false;
  if (argc == 4 && napi_is_buffer(env, argv[1], &isb) == napi_ok && isb && napi_is_buffer(env, argv[3], &isr) == napi_ok && isr &&
      napi_get_buffer_info(env, argv[1], (void **)&buf, &blen) == napi_ok && napi_get_value_uint32(env, argv[2], &len) == napi_ok &&
      napi_get_buffer_info(env, argv[3], (void **)&rec, &rlen) == napi_ok && rlen >= META && len > 0 && len <= blen && len <= 65535) {
    if (s->closing || s->fd < 0) result = 0;
    else {
      struct msghdr h;
      struct sockaddr_in6 addr;
      uint8_t ctl[CTL];
      struct iovec iov = {buf, len};
      memset(&h, 0, sizeof h);
      if (destination(s, rec, &h, &addr, ctl)) {
        h.msg_iov = &iov;
        h.msg_iovlen = 1;
        ssize_t r;
        do r = sendmsg(s->fd, &h, MSG_DONTWAIT);
        while (r < 0 && errno == EINTR);
        if (r >= 0) {
          s->sent++;
          result = 1;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
          s->send_dropped++;
          result = 0;
        } else s->send_errors++;
      } else s->send_errors++;
    }
  }
  napi_create_int32(env, result, &out);
  return out;
}

static napi_value Stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out, v;
  Sock *s = unwrap(env, info, &argc, argv);
  if (s == NULL) return NULL;
  napi_create_object(env, &out);
#define STAT(f)                     \
  napi_create_double(env, s->f, &v); \
  napi_set_named_property(env, out, #f, v);
  STAT(received) STAT(batches) STAT(invalid) STAT(sent) STAT(send_dropped) STAT(send_errors) STAT(calls)
#undef STAT
  return out;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
      {"open", NULL, Open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"start", NULL, Start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pause", NULL, Pause, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, Close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"localPort", NULL, LocalPort, NULL, NULL, NULL, napi_enumerable, NULL},
      {"send", NULL, Send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stats", NULL, Stats, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
  napi_value v;
  napi_create_uint32(env, BATCH, &v);
  napi_set_named_property(env, exports, "BATCH", v);
  napi_create_uint32(env, META, &v);
  napi_set_named_property(env, exports, "META", v);
  napi_create_uint32(env, OUTMETA, &v);
  napi_set_named_property(env, exports, "OUTMETA", v);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
