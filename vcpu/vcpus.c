/*
 * The VM's vCPUs as a set: creating them, starting their threads, and their run state. Only
 * this file changes the state, and vCPU threads only look at it between two KVM_RUNs
 * (vcpus_wait_runnable), so pause, resume, stop and the debugger's hold have one owner.
 */
#include "vcpu/vcpu.h"
#include "core/log.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>

#define PAUSE_TIMEOUT_S 5

int vcpus_init(struct vcpus *s, const struct vcpu_env *env)
{
	int ret;

	memset(s, 0, sizeof(*s));
	s->env = *env;
	s->debug_efd = -1;
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
		/* Under a debugger from the start: no thread runs it yet. */
		s->v[i]->debug_held = s->debug;
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
		pthread_mutex_lock(&s->lock);
		s->nr_started++;
		pthread_mutex_unlock(&s->lock);
	}
	return 0;
}

/* Under the lock. A held vCPU stays put while the VM runs; stopping the VM releases all. */
static bool must_park(const struct vcpus *s, const struct vcpu *v)
{
	return s->state == VCPUS_PAUSED || (s->state == VCPUS_RUNNING && v->debug_held);
}

/* Under the lock: every vCPU held and every started thread parked or ended. */
static bool all_stopped(const struct vcpus *s)
{
	for (unsigned i = 0; i < s->nr; i++)
		if (s->v[i] && !s->v[i]->debug_held)
			return false;
	return s->nr_parked + s->nr_exited >= s->nr_started;
}

/* Under the lock: tells the debugger when the last vCPU has stopped. */
static void debug_notify_stopped(struct vcpus *s)
{
	if (s->debug && all_stopped(s))
		eventfd_signal(s->debug_efd);
}

bool vcpus_wait_runnable(struct vcpu *v, bool *paused)
{
	struct vcpus *s = v->set;
	bool stop;

	*paused = false;
	pthread_mutex_lock(&s->lock);
	if (must_park(s, v)) {
		*paused = true;
		s->nr_parked++;
		pthread_cond_broadcast(&s->park_cond);
		debug_notify_stopped(s);
		while (must_park(s, v))
			pthread_cond_wait(&s->run_cond, &s->lock);
		s->nr_parked--;
	}
	stop = s->state == VCPUS_STOPPING;
	pthread_mutex_unlock(&s->lock);
	return stop;
}

bool vcpus_parking(struct vcpu *v)
{
	bool park;

	pthread_mutex_lock(&v->set->lock);
	park = must_park(v->set, v);
	pthread_mutex_unlock(&v->set->lock);
	return park;
}

void vcpus_thread_exit(struct vcpu *v)
{
	struct vcpus *s = v->set;

	pthread_mutex_lock(&s->lock);
	s->nr_exited++;
	pthread_cond_broadcast(&s->park_cond);
	debug_notify_stopped(s);
	pthread_mutex_unlock(&s->lock);
}

int vcpus_pause(struct vcpus *s)
{
	struct timespec deadline;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	if (s->state == VCPUS_RUNNING)
		s->state = VCPUS_PAUSED;
	pthread_mutex_unlock(&s->lock);
	for (unsigned i = 0; i < s->nr; i++)
		if (s->v[i])
			vcpu_kick(s->v[i]);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += PAUSE_TIMEOUT_S;
	pthread_mutex_lock(&s->lock);
	while (s->state == VCPUS_PAUSED && s->nr_parked + s->nr_exited < s->nr_started && ret == 0)
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

void vcpus_debug_init(struct vcpus *s, int efd)
{
	pthread_mutex_lock(&s->lock);
	s->debug = true;
	s->debug_efd = efd;
	for (unsigned i = 0; i < s->nr; i++)
		if (s->v[i])
			s->v[i]->debug_held = true;
	pthread_mutex_unlock(&s->lock);
}

void vcpus_debug_stop(struct vcpus *s)
{
	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < s->nr; i++)
		if (s->v[i])
			s->v[i]->debug_held = true;
	pthread_mutex_unlock(&s->lock);
	for (unsigned i = 0; i < s->nr; i++)
		if (s->v[i])
			vcpu_kick(s->v[i]);
}

bool vcpus_debug_stopped(struct vcpus *s)
{
	bool stopped;

	pthread_mutex_lock(&s->lock);
	stopped = all_stopped(s);
	pthread_mutex_unlock(&s->lock);
	return stopped;
}

void vcpus_debug_resume(struct vcpus *s, const bool *run)
{
	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < s->nr; i++)
		if (s->v[i])
			s->v[i]->debug_held = !run[i];
	pthread_cond_broadcast(&s->run_cond);
	pthread_mutex_unlock(&s->lock);
}

void vcpus_debug_event(struct vcpu *v, const struct kvm_debug_exit_arch *a)
{
	struct vcpus *s = v->set;

	pthread_mutex_lock(&s->lock);
	if (!s->debug) {
		pthread_mutex_unlock(&s->lock);
		return;
	}
	v->debug_event = *a;
	v->has_debug_event = true;
	for (unsigned i = 0; i < s->nr; i++)
		if (s->v[i])
			s->v[i]->debug_held = true;
	pthread_mutex_unlock(&s->lock);
	/* All-stop: the others leave KVM_RUN too; this one parks on its way back. */
	for (unsigned i = 0; i < s->nr; i++)
		if (s->v[i] && s->v[i] != v)
			vcpu_kick(s->v[i]);
	eventfd_signal(s->debug_efd);
}

bool vcpus_debug_take_event(struct vcpus *s, unsigned i, struct kvm_debug_exit_arch *a)
{
	bool have = false;

	pthread_mutex_lock(&s->lock);
	if (i < s->nr && s->v[i] && s->v[i]->has_debug_event) {
		*a = s->v[i]->debug_event;
		s->v[i]->has_debug_event = false;
		have = true;
	}
	pthread_mutex_unlock(&s->lock);
	return have;
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
