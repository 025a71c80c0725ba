/*
 * The VM's vCPUs as a set: creating them, starting their threads, and their run state. Only
 * this file changes the state, and vCPU threads only look at it between two KVM_RUNs
 * (vcpus_wait_runnable), so pause, resume and stop have one owner.
 */
#include "vcpu/vcpu.h"
#include "core/log.h"

#include <stdlib.h>
#include <string.h>

#define PAUSE_TIMEOUT_S 5

int vcpus_init(struct vcpus *s, const struct vcpu_env *env)
{
	int ret;

	memset(s, 0, sizeof(*s));
	s->env = *env;
	ret = -pthread_mutex_init(&s->lock, NULL);
	if (ret < 0)
		return ret;
	ret = -pthread_cond_init(&s->run_cond, NULL);
	if (ret < 0)
		goto err_lock;
	ret = -pthread_cond_init(&s->park_cond, NULL);
	if (ret < 0)
		goto err_run;
	return 0;
err_run:
	pthread_cond_destroy(&s->run_cond);
err_lock:
	pthread_mutex_destroy(&s->lock);
	return ret;
}

int vcpus_create(struct vcpus *s, unsigned nr, const struct vcpu_boot *boot)
{
	int ret;

	s->v = calloc(nr, sizeof(struct vcpu *));
	if (!s->v)
		return -ENOMEM;
	/* Set first: each vCPU's CPUID describes the whole package. */
	s->nr = nr;
	for (unsigned i = 0; i < nr; i++) {
		ret = vcpu_create(s, i, &s->v[i]);
		if (ret < 0) {
			log_err(s->env.log, "cannot create vcpu%u: %s", i, strerror(-ret));
			return ret;
		}
		ret = vcpu_configure(s->v[i], boot);
		if (ret < 0) {
			log_err(s->env.log, "cannot configure vcpu%u: %s", i, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

int vcpus_start(struct vcpus *s)
{
	for (unsigned i = 0; i < s->nr; i++) {
		int ret = vcpu_start(s->v[i]);

		if (ret < 0) {
			log_err(s->env.log, "cannot start vcpu%u: %s", i, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

bool vcpus_wait_runnable(struct vcpus *s, bool *paused)
{
	bool stop;

	*paused = false;
	pthread_mutex_lock(&s->lock);
	if (s->state == VCPUS_PAUSED) {
		*paused = true;
		s->nr_parked++;
		pthread_cond_broadcast(&s->park_cond);
		while (s->state == VCPUS_PAUSED)
			pthread_cond_wait(&s->run_cond, &s->lock);
		s->nr_parked--;
	}
	stop = s->state == VCPUS_STOPPING;
	pthread_mutex_unlock(&s->lock);
	return stop;
}

int vcpus_pause(struct vcpus *s)
{
	struct timespec deadline;
	unsigned running = 0;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	if (s->state == VCPUS_RUNNING)
		s->state = VCPUS_PAUSED;
	pthread_mutex_unlock(&s->lock);
	for (unsigned i = 0; i < s->nr; i++) {
		if (!s->v[i])
			continue;
		if (s->v[i]->started)
			running++;
		vcpu_kick(s->v[i]);
	}
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += PAUSE_TIMEOUT_S;
	pthread_mutex_lock(&s->lock);
	while (s->state == VCPUS_PAUSED && s->nr_parked < running && ret == 0)
		ret = -pthread_cond_timedwait(&s->park_cond, &s->lock, &deadline);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

void vcpus_resume(struct vcpus *s)
{
	pthread_mutex_lock(&s->lock);
	if (s->state == VCPUS_PAUSED) {
		s->state = VCPUS_RUNNING;
		pthread_cond_broadcast(&s->run_cond);
	}
	pthread_mutex_unlock(&s->lock);
}

void vcpus_halt(struct vcpus *s)
{
	/* Kicks under the lock: vcpus_stop takes it before joining, so never joins a thread
	 * this is still kicking. */
	pthread_mutex_lock(&s->lock);
	if (s->state != VCPUS_STOPPING) {
		s->state = VCPUS_STOPPING;
		pthread_cond_broadcast(&s->run_cond);
		for (unsigned i = 0; s->v && i < s->nr; i++)
			if (s->v[i])
				vcpu_kick(s->v[i]);
	}
	pthread_mutex_unlock(&s->lock);
}

void vcpus_stop(struct vcpus *s)
{
	pthread_mutex_lock(&s->lock);
	s->state = VCPUS_STOPPING;
	pthread_cond_broadcast(&s->run_cond);
	pthread_mutex_unlock(&s->lock);
	for (unsigned i = 0; i < s->nr; i++)
		if (s->v[i])
			vcpu_kick(s->v[i]);
	for (unsigned i = 0; i < s->nr; i++)
		if (s->v[i])
			vcpu_join(s->v[i]);
}

void vcpus_destroy(struct vcpus *s)
{
	for (unsigned i = 0; i < s->nr; i++)
		vcpu_destroy(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->nr = 0;
	pthread_cond_destroy(&s->park_cond);
	pthread_cond_destroy(&s->run_cond);
	pthread_mutex_destroy(&s->lock);
}
