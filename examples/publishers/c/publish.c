/* Submits one job to troupe and waits for its end, with nats.c.
 *
 *   publish-c PIPELINE KEY PAYLOAD_JSON
 *
 * Exit 0: the job succeeded; 1: it ended otherwise; 2: the submission was
 * refused (its code and message are printed). See ../README.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <nats/nats.h>

enum { TRIES = 8, WAIT_MS = 10000 };

/* Codes that may pass if the same request is sent again, with the same
 * key (docs/wire-format.md). */
static int retryable(const char* code) {
  return strcmp(code, "unavailable") == 0 || strcmp(code, "rate_limited") == 0;
}

/* Sends `body` on `subject`; the decoded reply, or NULL with *why set to
 * "no_responders" or "timeout" (both worth another try). */
static cJSON* request(natsConnection* nc, const char* subject, cJSON* body,
                      int64_t timeout_ms, const char** why) {
  char* text = cJSON_PrintUnformatted(body);
  natsMsg* reply = NULL;
  natsStatus s = natsConnection_RequestString(&reply, nc, subject, text,
                                              timeout_ms);
  free(text);
  if (s != NATS_OK) {
    *why = s == NATS_NO_RESPONDERS ? "no_responders" : "timeout";
    return NULL;
  }
  cJSON* doc = cJSON_ParseWithLength(natsMsg_GetData(reply),
                                     (size_t)natsMsg_GetDataLength(reply));
  natsMsg_Destroy(reply);
  *why = doc ? NULL : "invalid_reply";
  return doc;
}

static const char* error_field(cJSON* reply, const char* field) {
  cJSON* err = cJSON_GetObjectItemCaseSensitive(reply, "error");
  cJSON* v = cJSON_GetObjectItemCaseSensitive(err, field);
  return cJSON_IsString(v) ? v->valuestring : "";
}

/* Submits with retries; returns the job id (malloc'd) or NULL after
 * printing why it was refused. */
static char* submit(natsConnection* nc, const char* pipeline, const char* key,
                    cJSON* payload) {
  cJSON* body = cJSON_CreateObject();
  cJSON_AddStringToObject(body, "pipeline", pipeline);
  cJSON_AddStringToObject(body, "key", key);
  cJSON_AddItemToObject(body, "payload", payload);
  char* job_id = NULL;
  useconds_t backoff = 100000;
  for (int attempt = 1; attempt <= TRIES && !job_id; ++attempt) {
    const char* why = NULL;
    cJSON* reply = request(nc, "troupe.api.v1.submit", body, 5000, &why);
    if (reply && cJSON_IsTrue(cJSON_GetObjectItem(reply, "ok"))) {
      job_id = strdup(cJSON_GetObjectItem(reply, "job_id")->valuestring);
    } else if (reply && !retryable(error_field(reply, "code"))) {
      printf("refused %s: %s\n", error_field(reply, "code"),
             error_field(reply, "message"));
      cJSON_Delete(reply);
      break;
    } else {
      cJSON* after = reply ? cJSON_GetObjectItem(cJSON_GetObjectItem(reply, "error"),
                                                 "retry_after_ms")
                           : NULL;
      usleep(cJSON_IsNumber(after) ? (useconds_t)after->valuedouble * 1000 : backoff);
      backoff = backoff < 5000000 ? backoff * 2 : backoff;
    }
    cJSON_Delete(reply);
  }
  cJSON_Delete(body);
  return job_id;
}

/* The job's status once it ended, or NULL after 10 minutes. */
static cJSON* wait_for_end(natsConnection* nc, const char* job_id) {
  cJSON* body = cJSON_CreateObject();
  cJSON_AddStringToObject(body, "job_id", job_id);
  cJSON_AddNumberToObject(body, "timeout_ms", WAIT_MS);
  for (int i = 0; i < 60; ++i) {
    const char* why = NULL;
    cJSON* reply = request(nc, "troupe.api.v1.wait", body, WAIT_MS + 5000, &why);
    cJSON* job = cJSON_DetachItemFromObject(reply, "job");
    int done = cJSON_IsTrue(cJSON_GetObjectItem(reply, "done"));
    cJSON_Delete(reply);
    if (done) {
      cJSON_Delete(body);
      return job;
    }
    cJSON_Delete(job);
    if (!reply)
      sleep(1); /* no node answers: ask again */
  }
  cJSON_Delete(body);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s PIPELINE KEY PAYLOAD_JSON\n", argv[0]);
    return 64;
  }
  cJSON* payload = cJSON_Parse(argv[3]);
  if (!payload) {
    fprintf(stderr, "PAYLOAD_JSON is not JSON\n");
    return 64;
  }
  const char* url = getenv("TROUPE_NATS_URL");
  natsConnection* nc = NULL;
  natsStatus s = natsConnection_ConnectTo(&nc, url ? url : NATS_DEFAULT_URL);
  if (s != NATS_OK) {
    fprintf(stderr, "cannot connect to NATS: %s\n", natsStatus_GetText(s));
    return 1;
  }
  int rc = 2;
  char* job_id = submit(nc, argv[1], argv[2], payload);
  cJSON* job = job_id ? wait_for_end(nc, job_id) : NULL;
  if (job) {
    const char* state = cJSON_GetObjectItem(job, "state")->valuestring;
    int ok = strcmp(state, "succeeded") == 0;
    char* outcome = cJSON_PrintUnformatted(
        cJSON_GetObjectItem(job, ok ? "result" : "error"));
    printf("%s %s %s\n", job_id, state, outcome);
    free(outcome);
    rc = ok ? 0 : 1;
  } else if (job_id) {
    printf("%s unknown: no end within 10 minutes\n", job_id);
    rc = 1;
  }
  cJSON_Delete(job);
  free(job_id);
  natsConnection_Destroy(nc);
  nats_Close();
  return rc;
}
