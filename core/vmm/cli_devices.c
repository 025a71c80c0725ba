#include "core/vmm/cli_devices.h"
#include "core/vmm/kvlist.h"
#include "core/log.h"
#include "virtio/vsock.h"

#include <stdlib.h>
#include <string.h>

static int parse_cid(const char *opt, const char *v, uint64_t *cid, const struct logger *lg)
{
	const char *why;

	if (parse_u64(v, cid) < 0) {
		log_err(lg, "%s: cid '%s' is not a number", opt, v);
		return -EINVAL;
	}
	why = vsock_cid_invalid(*cid);
	if (why) {
		log_err(lg, "%s: cid %s cannot be a guest's: %s", opt, v, why);
		return -EINVAL;
	}
	return 0;
}

static int set_vsock(struct vm_config *cfg, const char *opt, const struct vsock_config *vc,
		     const struct logger *lg)
{
	if (cfg->vsock.present) {
		log_err(lg, "%s: a VM has one vsock device (--vsock or --cid given twice)", opt);
		return -EINVAL;
	}
	cfg->vsock = *vc;
	cfg->vsock.present = true;
	return 0;
}

static int dup_value(char **dst, const char *opt, const struct kv_item *it, const struct logger *lg)
{
	if (!*it->value) {
		log_err(lg, "%s: %s= is empty", opt, it->key);
		return -EINVAL;
	}
	free(*dst);
	*dst = strdup(it->value);
	return *dst ? 0 : -ENOMEM;
}

int cli_parse_vsock(const char *s, struct vm_config *cfg, const struct logger *lg)
{
	struct vsock_config vc = {0};
	bool have_cid = false;
	struct kvlist l;
	int ret = 0;

	if (kvlist_parse(&l, s, "cid", NULL) < 0) {
		log_err(lg, "--vsock: cannot parse '%s'", s);
		return -EINVAL;
	}
	for (unsigned i = 0; i < l.nr && ret == 0; i++) {
		const struct kv_item *it = &l.items[i];

		if (!it->value) {
			log_err(lg, "--vsock: %s needs a value", it->key);
			ret = -EINVAL;
		} else if (strcmp(it->key, "cid") == 0) {
			ret = parse_cid("--vsock", it->value, &vc.cid, lg);
			have_cid = true;
		} else if (strcmp(it->key, "device") == 0) {
			ret = dup_value(&vc.device, "--vsock", it, lg);
		} else if (strcmp(it->key, "uds-path") == 0) {
			ret = dup_value(&vc.uds_path, "--vsock", it, lg);
		} else {
			log_err(lg, "--vsock: unknown key '%s' (cid, device, uds-path)", it->key);
			ret = -EINVAL;
		}
	}
	kvlist_free(&l);
	if (ret == 0 && !have_cid) {
		log_err(lg, "--vsock: cid= is required");
		ret = -EINVAL;
	}
	if (ret == 0 && vc.device && vc.uds_path) {
		log_err(lg, "--vsock: device= (vhost-vsock) and uds-path= (user space) exclude "
			    "each other");
		ret = -EINVAL;
	}
	if (ret == 0)
		ret = set_vsock(cfg, "--vsock", &vc, lg);
	if (ret < 0) {
		free(vc.device);
		free(vc.uds_path);
		return -EINVAL;
	}
	return 0;
}

int cli_parse_cid(const char *s, struct vm_config *cfg, const struct logger *lg)
{
	struct vsock_config vc = {0};

	if (parse_cid("--cid", s, &vc.cid, lg) < 0)
		return -EINVAL;
	return set_vsock(cfg, "--cid", &vc, lg);
}

int cli_add_vconsole(struct vm_config *cfg, unsigned num, struct serial_config *sc,
		     const struct logger *lg)
{
	if (sc->earlycon) {
		log_err(lg, "--serial: earlycon needs hardware=serial (an 8250 UART)");
		return -EINVAL;
	}
	for (unsigned i = 0; i < cfg->nr_vconsoles; i++) {
		if (cfg->vconsole[i].num == num) {
			log_err(lg, "--serial: hardware=virtio-console,num=%u given twice", num);
			return -EINVAL;
		}
	}
	if (cfg->nr_vconsoles >= CONFIG_MAX_VCONSOLE) {
		log_err(lg, "--serial: at most %d virtio-console ports", CONFIG_MAX_VCONSOLE);
		return -EINVAL;
	}
	cfg->vconsole[cfg->nr_vconsoles++] = (struct vconsole_config){.num = num, .s = *sc};
	return 0;
}
