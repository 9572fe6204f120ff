// librdkafka's public header must precede the mock cluster's (KAFKA-NOTES).
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
