#include "core/vmm/net_cli.h"
#include "core/vmm/kvlist.h"
#include "core/log.h"
#include "core/util.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const net_flags[] = {"user", "vhost-net", "dns", NULL};

/* crosvm's key-value syntax may quote a value: mac="3d:70:eb:61:1a:91". */
static const char *unquote(char *v)
{
	size_t n = strlen(v);

	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		v[n - 1] = '\0';
		return v + 1;
	}
	return v;
}

static int parse_ip(const char *s, uint32_t *out)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return -EINVAL;
	*out = a.s_addr;
	return 0;
}

/* aa:bb:cc:dd:ee:ff, a unicast address that is not all zero. */
static int parse_mac(const char *s, uint8_t mac[6])
{
	if (strlen(s) != 17)
		return -EINVAL;
	for (unsigned i = 0; i < 6; i++) {
		int hi = hex_digit(s[3 * i]), lo = hex_digit(s[3 * i + 1]);

		if (hi < 0 || lo < 0 || s[3 * i + 2] != (i < 5 ? ':' : '\0'))
			return -EINVAL;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	if ((mac[0] & 1) || !(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]))
		return -EINVAL;
	return 0;
}

static int parse_port(const char *s, uint16_t *port)
{
	uint64_t v;

	if (parse_u64(s, &v) < 0 || v < 1 || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

/*
 * hostfwd=tcp:[127.0.0.1]:HOSTPORT-[10.0.2.15]:GUESTPORT, as QEMU writes it (the addresses may
 * be left out, "tcp:HOSTPORT-:GUESTPORT"). Only loopback on the host: nothing else listens.
 */
static int parse_hostfwd(const char *v, struct net_hostfwd *f, const struct logger *lg)
{
	char buf[128], *host, *guest, *dash, *colon;

	if (strlen(v) >= sizeof(buf) || strncmp(v, "tcp:", 4) != 0) {
		log_err(lg, "--net: hostfwd=%s: expected tcp:HOSTPORT-:GUESTPORT", v);
		return -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%s", v + 4);
	dash = strchr(buf, '-');
	if (!dash) {
		log_err(lg, "--net: hostfwd=%s: expected tcp:HOSTPORT-:GUESTPORT", v);
		return -EINVAL;
	}
	*dash = '\0';
	host = buf;
	guest = dash + 1;
	colon = strrchr(host, ':');
	if (colon) {
		*colon = '\0';
		if (*host && strcmp(host, "127.0.0.1") != 0) {
			log_err(lg, "--net: hostfwd=%s: forwarded ports listen on 127.0.0.1 only",
				v);
			return -EINVAL;
		}
		host = colon + 1;
	}
	colon = strrchr(guest, ':');
	if (colon) {
		*colon = '\0';
		if (*guest && strcmp(guest, NET_USER_GUEST) != 0) {
			log_err(lg, "--net: hostfwd=%s: the guest's address is %s", v,
				NET_USER_GUEST);
			return -EINVAL;
		}
		guest = colon + 1;
	}
	if (parse_port(host, &f->host_port) < 0 || parse_port(guest, &f->guest_port) < 0) {
		log_err(lg, "--net: hostfwd=%s: ports are 1-65535", v);
		return -EINVAL;
	}
	return 0;
}

/* vhost-net, vhost-net=true|false, or vhost-net=[device=PATH]. */
static int parse_vhost(const struct kv_item *it, struct net_config *n, const struct logger *lg)
{
	const char *v = it->value;
	size_t len;
	bool b;

	if (v && v[0] == '[') {
		len = strlen(v);
		if (len < 2 || v[len - 1] != ']' || strncmp(v, "[device=", 8) != 0 || len == 9) {
			log_err(lg, "--net: vhost-net=%s: expected vhost-net=[device=PATH]", v);
			return -EINVAL;
		}
		free(n->vhost_device);
		n->vhost_device = strndup(v + 8, len - 9);
		if (!n->vhost_device)
			return -ENOMEM;
		n->vhost = true;
		return 0;
	}
	if (kv_bool(it, &b) < 0) {
		log_err(lg, "--net: vhost-net=%s is not a boolean or [device=PATH]", v);
		return -EINVAL;
	}
	n->vhost = b;
	return 0;
}

static int add_net(struct vm_config *cfg, const struct net_config *n, const struct logger *lg)
{
	if (cfg->nr_nets >= CONFIG_MAX_NETS) {
		log_err(lg, "too many network devices (at most %d)", CONFIG_MAX_NETS);
		return -EINVAL;
	}
	cfg->nets[cfg->nr_nets++] = *n;
	return 0;
}

static void net_free(struct net_config *n)
{
	free(n->tap_name);
	free(n->vhost_device);
	*n = (struct net_config){0};
}

/* What --net said, checked as a whole. */
static int check_net(const struct net_config *n, bool have_ip, bool have_mask, bool have_fd,
		     const struct logger *lg)
{
	unsigned modes = !!n->tap_name + have_fd + have_ip + (n->mode == NET_USER);

	if (modes == 0) {
		log_err(lg,
			"--net: one of tap-name=, tap-fd=, host-ip= (with netmask= and mac=) or "
			"user is required");
		return -EINVAL;
	}
	if (modes > 1) {
		log_err(lg, "--net: tap-name=, tap-fd=, host-ip= and user exclude each other");
		return -EINVAL;
	}
	if (have_ip && (!have_mask || !n->has_mac)) {
		log_err(lg, "--net: host-ip= needs netmask= and mac= too");
		return -EINVAL;
	}
	if (have_mask && !have_ip) {
		log_err(lg, "--net: netmask= goes with host-ip=");
		return -EINVAL;
	}
	if (n->mode == NET_USER && (n->vhost || n->vq_pairs > 1)) {
		log_err(lg, "--net: user networking has one queue pair and no vhost-net");
		return -EINVAL;
	}
	if (n->mode != NET_USER && (n->nr_fwd || n->dns)) {
		log_err(lg, "--net: hostfwd= and dns go with user");
		return -EINVAL;
	}
	if (have_fd && n->vq_pairs > 1) {
		log_err(lg, "--net: a tap-fd= is one queue: vq-pairs=1 only");
		return -EINVAL;
	}
	return 0;
}

/* One key of --net into n; the *have flags say which mode keys appeared. */
static int net_key(const struct kv_item *it, struct net_config *n, bool *have_ip, bool *have_mask,
		   bool *have_fd, const struct logger *lg)
{
	const char *k = it->key, *v = it->value ? unquote(it->value) : NULL;
	uint64_t x;
	bool b;

	if (strcmp(k, "tap-name") == 0 && v) {
		if (!*v || n->tap_name) {
			log_err(lg, "--net: tap-name= is empty or given twice");
			return -EINVAL;
		}
		n->tap_name = strdup(v);
		n->mode = NET_TAP_NAME;
		return n->tap_name ? 0 : -ENOMEM;
	}
	if (strcmp(k, "tap-fd") == 0 && v) {
		if (parse_u64(v, &x) < 0 || x > INT32_MAX) {
			log_err(lg, "--net: tap-fd=%s is not a file descriptor number", v);
			return -EINVAL;
		}
		n->tap_fd = (int)x;
		n->mode = NET_TAP_FD;
		*have_fd = true;
		return 0;
	}
	if ((strcmp(k, "host-ip") == 0 || strcmp(k, "netmask") == 0) && v) {
		bool ip = k[0] == 'h';

		if (parse_ip(v, ip ? &n->host_ip : &n->netmask) < 0) {
			log_err(lg, "--net: %s=%s is not an IPv4 address", k, v);
			return -EINVAL;
		}
		*(ip ? have_ip : have_mask) = true;
		if (ip)
			n->mode = NET_TAP_CREATE;
		return 0;
	}
	if (strcmp(k, "mac") == 0 && v) {
		if (parse_mac(v, n->mac) < 0) {
			log_err(lg,
				"--net: mac=%s is not a unicast MAC address (aa:bb:cc:dd:ee:ff)",
				v);
			return -EINVAL;
		}
		n->has_mac = true;
		return 0;
	}
	if (strcmp(k, "vhost-net") == 0)
		return parse_vhost(it, n, lg);
	if (strcmp(k, "vq-pairs") == 0 && v) {
		if (parse_u64(v, &x) < 0 || x < 1 || x > NET_MAX_PAIRS) {
			log_err(lg, "--net: vq-pairs=%s is out of range (1-%d)", v, NET_MAX_PAIRS);
			return -EINVAL;
		}
		n->vq_pairs = (unsigned)x;
		return 0;
	}
	if (strcmp(k, "mrg_rxbuf") == 0 || strcmp(k, "dns") == 0) {
		if (kv_bool(it, &b) < 0) {
			log_err(lg, "--net: %s=%s is not a boolean", k, v);
			return -EINVAL;
		}
		if (k[0] == 'm')
			n->no_mrg_rxbuf = !b;
		else
			n->dns = b;
		return 0;
	}
	if (strcmp(k, "user") == 0 && !v) {
		n->mode = NET_USER;
		return 0;
	}
	if (strcmp(k, "hostfwd") == 0 && v) {
		if (n->nr_fwd >= NET_MAX_HOSTFWD) {
			log_err(lg, "--net: at most %d hostfwd=", NET_MAX_HOSTFWD);
			return -EINVAL;
		}
		return parse_hostfwd(v, &n->fwd[n->nr_fwd++], lg);
	}
	if (strcmp(k, "packed-queue") == 0 || strcmp(k, "pci-address") == 0) {
		log_err(lg, "--net: %s is not supported by this crosvm build", k);
		return -EINVAL;
	}
	log_err(lg, "--net: unknown key '%s'", k);
	return -EINVAL;
}

int cli_parse_net(const char *s, struct vm_config *cfg, const struct logger *lg)
{
	struct net_config n = {.vq_pairs = 1, .tap_fd = -1};
	bool have_ip = false, have_mask = false, have_fd = false;
	struct kvlist l;
	int ret;

	if (kvlist_parse(&l, s, NULL, net_flags) < 0) {
		log_err(lg, "--net: cannot parse '%s'", s);
		return -EINVAL;
	}
	for (unsigned i = 0; i < l.nr; i++) {
		ret = net_key(&l.items[i], &n, &have_ip, &have_mask, &have_fd, lg);
		if (ret < 0)
			goto err;
	}
	ret = check_net(&n, have_ip, have_mask, have_fd, lg);
	if (ret == 0)
		ret = add_net(cfg, &n, lg);
	if (ret < 0)
		goto err;
	kvlist_free(&l);
	return 0;
err:
	net_free(&n);
	kvlist_free(&l);
	return -EINVAL;
}

int cli_net_legacy_option(const char *name, const char *arg, struct vm_config *cfg,
			  const struct logger *lg)
{
	struct net_legacy_config *l = &cfg->net_legacy;
	uint64_t v;

	if (strcmp(name, "tap-name") == 0) {
		if (l->nr_tap_names >= CONFIG_MAX_NETS || !*arg) {
			log_err(lg, "--tap-name: empty, or more than %d", CONFIG_MAX_NETS);
			return -EINVAL;
		}
		l->tap_names[l->nr_tap_names] = strdup(arg);
		return l->tap_names[l->nr_tap_names++] ? 0 : -ENOMEM;
	}
	if (strcmp(name, "tap-fd") == 0) {
		if (l->nr_tap_fds >= CONFIG_MAX_NETS || parse_u64(arg, &v) < 0 || v > INT32_MAX) {
			log_err(lg, "--tap-fd: '%s' is not a file descriptor number (at most %d)",
				arg, CONFIG_MAX_NETS);
			return -EINVAL;
		}
		l->tap_fds[l->nr_tap_fds++] = (int)v;
		return 0;
	}
	if (strcmp(name, "host-ip") == 0 || strcmp(name, "host_ip") == 0)
		return str_set(&l->host_ip, arg);
	if (strcmp(name, "netmask") == 0)
		return str_set(&l->netmask, arg);
	if (strcmp(name, "mac") == 0)
		return str_set(&l->mac, arg);
	if (strcmp(name, "vhost-net") == 0) {
		l->vhost = true;
		return 0;
	}
	if (strcmp(name, "net-vq-pairs") == 0) {
		if (parse_u64(arg, &v) < 0 || v < 1 || v > NET_MAX_PAIRS) {
			log_err(lg, "--net-vq-pairs: '%s' is out of range (1-%d)", arg,
				NET_MAX_PAIRS);
			return -EINVAL;
		}
		l->vq_pairs = (unsigned)v;
		return 0;
	}
	return -EINVAL;
}

/* The deprecated options, each as the --net it stands for. */
static int legacy_devices(struct vm_config *cfg, const struct logger *lg)
{
	struct net_legacy_config *l = &cfg->net_legacy;
	char buf[256];
	int ret = 0;

	if (l->host_ip || l->netmask || l->mac) {
		if (!l->host_ip || !l->netmask || !l->mac) {
			log_err(lg, "--host-ip, --netmask and --mac go together");
			return -EINVAL;
		}
		snprintf(buf, sizeof(buf), "host-ip=%s,netmask=%s,mac=%s", l->host_ip, l->netmask,
			 l->mac);
		if (strchr(l->host_ip, ',') || strchr(l->netmask, ',') || strchr(l->mac, ',')) {
			log_err(lg, "--host-ip, --netmask, --mac: unexpected ','");
			return -EINVAL;
		}
		ret = cli_parse_net(buf, cfg, lg);
	}
	for (unsigned i = 0; i < l->nr_tap_names && !ret; i++) {
		if (strchr(l->tap_names[i], ',') || strlen(l->tap_names[i]) > 64) {
			log_err(lg, "--tap-name: '%s' is not an interface name", l->tap_names[i]);
			return -EINVAL;
		}
		snprintf(buf, sizeof(buf), "tap-name=%s", l->tap_names[i]);
		ret = cli_parse_net(buf, cfg, lg);
	}
	for (unsigned i = 0; i < l->nr_tap_fds && !ret; i++) {
		snprintf(buf, sizeof(buf), "tap-fd=%d", l->tap_fds[i]);
		ret = cli_parse_net(buf, cfg, lg);
	}
	return ret;
}

int cli_net_finalize(struct vm_config *cfg, const struct logger *lg)
{
	unsigned first = cfg->nr_nets;
	int ret = legacy_devices(cfg, lg);

	if (ret < 0)
		return ret;
	for (unsigned i = first; i < cfg->nr_nets; i++) {
		cfg->nets[i].vhost = cfg->net_legacy.vhost;
		if (cfg->net_legacy.vq_pairs && cfg->nets[i].mode != NET_TAP_FD)
			cfg->nets[i].vq_pairs = cfg->net_legacy.vq_pairs;
	}
	if (cfg->net_legacy.vhost && first == cfg->nr_nets) {
		log_err(lg, "--vhost-net goes with --tap-name, --tap-fd or --host-ip");
		return -EINVAL;
	}
	for (unsigned i = 0; i < cfg->nr_nets; i++) {
		if (cfg->nets[i].vq_pairs > cfg->cpus) {
			log_warn(lg,
				 "--net: the number of queue pairs (%u) must not exceed the vCPU "
				 "count "
				 "(%u): falling back to one pair",
				 cfg->nets[i].vq_pairs, cfg->cpus);
			cfg->nets[i].vq_pairs = 1;
		}
	}
	return 0;
}
