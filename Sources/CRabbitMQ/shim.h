// The rabbitmq-c client API, as the ActAMQP wrapper sees it. No logic lives here: only fixed-argument
// wrappers for variadic calls (Swift cannot call C variadics) and constants whose macros do not import.
#ifndef ACT_CRABBITMQ_SHIM_H
#define ACT_CRABBITMQ_SHIM_H

#if __has_include(<rabbitmq-c/amqp.h>)
#include <rabbitmq-c/amqp.h>
#include <rabbitmq-c/tcp_socket.h>
#include <rabbitmq-c/ssl_socket.h>
#include <rabbitmq-c/framing.h>
#else
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <amqp_ssl_socket.h>
#include <amqp_framing.h>
#endif

/// `amqp_login` with PLAIN credentials; `amqp_login` itself is variadic.
static inline amqp_rpc_reply_t act_amqp_login_plain(amqp_connection_state_t state, char const *vhost,
                                                    int channel_max, int frame_max, int heartbeat,
                                                    char const *user, char const *password) {
    return amqp_login(state, vhost, channel_max, frame_max, heartbeat, AMQP_SASL_METHOD_PLAIN, user, password);
}

/// `amqp_login_with_properties` with PLAIN credentials (client properties carry `connection_name`).
static inline amqp_rpc_reply_t act_amqp_login_plain_with_properties(amqp_connection_state_t state, char const *vhost,
                                                                    int channel_max, int frame_max, int heartbeat,
                                                                    amqp_table_t const *properties,
                                                                    char const *user, char const *password) {
    return amqp_login_with_properties(state, vhost, channel_max, frame_max, heartbeat, properties,
                                      AMQP_SASL_METHOD_PLAIN, user, password);
}

// Method numbers: rabbitmq-c defines them as cast expressions, which Swift does not import.
static const amqp_method_number_t ACT_AMQP_CONNECTION_CLOSE_METHOD = AMQP_CONNECTION_CLOSE_METHOD;
static const amqp_method_number_t ACT_AMQP_CONNECTION_CLOSE_OK_METHOD = AMQP_CONNECTION_CLOSE_OK_METHOD;
static const amqp_method_number_t ACT_AMQP_CONNECTION_BLOCKED_METHOD = AMQP_CONNECTION_BLOCKED_METHOD;
static const amqp_method_number_t ACT_AMQP_CONNECTION_UNBLOCKED_METHOD = AMQP_CONNECTION_UNBLOCKED_METHOD;
static const amqp_method_number_t ACT_AMQP_CHANNEL_CLOSE_METHOD = AMQP_CHANNEL_CLOSE_METHOD;
static const amqp_method_number_t ACT_AMQP_CHANNEL_CLOSE_OK_METHOD = AMQP_CHANNEL_CLOSE_OK_METHOD;
static const amqp_method_number_t ACT_AMQP_BASIC_ACK_METHOD = AMQP_BASIC_ACK_METHOD;
static const amqp_method_number_t ACT_AMQP_BASIC_NACK_METHOD = AMQP_BASIC_NACK_METHOD;
static const amqp_method_number_t ACT_AMQP_BASIC_RETURN_METHOD = AMQP_BASIC_RETURN_METHOD;
static const amqp_method_number_t ACT_AMQP_BASIC_DELIVER_METHOD = AMQP_BASIC_DELIVER_METHOD;
static const amqp_method_number_t ACT_AMQP_BASIC_CANCEL_METHOD = AMQP_BASIC_CANCEL_METHOD;


#endif
