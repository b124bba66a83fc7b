# frozen_string_literal: true

require "json"
require "securerandom"

module HeapCapture
  # What travels through PostgreSQL. A signal is the user's payload as is, on
  # heapcapture_<process_type>_<n>; its request id is the signalling backend's pid, which NOTIFY
  # delivers with every notification, so the payload keeps PostgreSQL's whole 7999 bytes.
  # Replies are JSON objects on heapcapture_reply: an "ack" on receipt, then the capture's result,
  # each with "request_id" (that backend pid), "channel", "dyno" and "pid".
  # A signal with trace_for: is the one exception to "the payload as is": a JSON object
  # {"heapcapture":"trace","trace_for":600,"payload":"why"}; any other text, JSON or not, is a
  # payload that means "capture now".
  #
  # With a signal_key (Signing), a signal is a signed request instead:
  # {"heapcapture":"signed","time":T,"nonce":"32 hex","trace_for":600,"reply_key":"base64","payload":"why",
  #  "mac":"64 hex"}, the MAC over the channel and every other field (SignalAuth, signal_auth.c), and
  # reply_key the signaller's ephemeral X25519 key the reply's URL and location are sealed to.
  module Wire
    REPLY_CHANNEL = "heapcapture_reply"
    PAYLOAD_MAX = 7999 # NOTIFY's payload must be shorter than 8000 bytes
    SIGNED_PREFIX = '{"heapcapture":"signed"'
    TRACE_PREFIX = '{"heapcapture":"trace"'

    # A notification as received: the payload, trace_for (nil for a capture now), and the signed
    # fields ({"time", "nonce", "reply_key", "mac"}) of a signed request, else nil.
    Request = Struct.new(:payload, :trace_for, :signed) do
      def reply_key = signed && signed["reply_key"]
    end

    module_function

    # The payload as a valid UTF-8 String that NOTIFY accepts, or ArgumentError saying why not.
    def payload!(payload)
      raise ArgumentError, Util.prefixed("the signal payload must be a String, got #{payload.class}") \
        unless payload.is_a?(String)

      text = Util.utf8(payload)
      raise ArgumentError, Util.prefixed("the signal payload is not valid UTF-8: #{payload.inspect[0, 80]}") \
        unless text.valid_encoding?
      raise ArgumentError, Util.prefixed("the signal payload contains a NUL byte, which PostgreSQL text cannot hold") \
        if text.include?("\0")

      if text.bytesize > PAYLOAD_MAX
        raise ArgumentError, Util.prefixed("the signal payload is #{text.bytesize} bytes; PostgreSQL's NOTIFY " \
                                           "takes at most #{PAYLOAD_MAX}")
      end
      text
    end

    # What a signal sends: the payload as is, or with trace_for the trace request around it.
    def signal_text(payload, trace_for)
      text = payload!(payload)
      return text unless trace_for

      payload!(JSON.generate({ "heapcapture" => "trace", "trace_for" => trace_for, "payload" => text }))
    end

    # A signed request's text: the payload (and trace_for) with the time, a fresh nonce, the reply
    # key (or nil) and the MAC over them and the channel it is sent on.
    def signed_text(payload, trace_for, channel:, key:, reply_key: nil, time: Time.now.to_i,
                    nonce: SecureRandom.hex(SignalAuth::NONCE_HEX / 2))
      text = payload!(payload)
      mac = SignalAuth.mac(key, channel, time, nonce, trace_for&.to_i, reply_key, text)
      payload!(JSON.generate({ "heapcapture" => "signed", "time" => time, "nonce" => nonce, "trace_for" => trace_for&.to_i,
                               "reply_key" => reply_key, "payload" => text, "mac" => mac.unpack1("H*") }.compact))
    end

    # The Request a notification's text carries: signed, a trace request (trace_for what it said, to
    # be checked), or any other text, JSON or not: a payload as is.
    def parse_request(text)
      request = text.start_with?(SIGNED_PREFIX, TRACE_PREFIX) ? parse_json(text) : nil
      return Request.new(text, nil, nil) unless request.is_a?(Hash)

      payload = request["payload"].is_a?(String) ? request["payload"] : ""
      case request["heapcapture"]
      when "signed" then Request.new(payload, request["trace_for"], request.slice("time", "nonce", "reply_key", "mac"))
      when "trace" then Request.new(payload, request["trace_for"] || "(none)", nil)
      else Request.new(text, nil, nil)
      end
    end

    # [payload, trace_for] of a received notification (parse_request's first two).
    def parse_signal(text) = parse_request(text).to_a.first(2)

    def parse_json(text)
      JSON.parse(text)
    rescue JSON::ParserError
      nil
    end

    # JSON for a reply, cut to fit in one notification: the summary keeps as many of its top sites
    # as fit, then the longest strings (payload, error) are shortened and "truncated" lists what
    # was cut.
    def reply_json(reply)
      reply = reply.to_h { |k, v| [k.to_s, plain(v)] }
      json = JSON.generate(reply)
      json = trim_lists(reply, json)
      while json.bytesize > PAYLOAD_MAX
        # the sealed part is cut never: a part of it would not open
        key, value = reply.select { |k, v| v.is_a?(String) && k != "sealed" }.max_by { |_, v| v.bytesize }
        break unless key && value.bytesize.positive?

        keep = [value.bytesize - (json.bytesize - PAYLOAD_MAX) - 16, 0].max
        reply[key] = value.byteslice(0, keep).scrub("")
        reply["truncated"] = ((reply["truncated"] || []) + [key]).uniq
        json = JSON.generate(reply)
      end
      json
    end

    # The summary's lists cut from their ends until the reply fits: the last sites down to three,
    # the last suspects down to one, then the rest of each. => the JSON (reply's summary replaced).
    def trim_lists(reply, json)
      [["sites", 3], ["suspects", 1], ["sites", 0], ["suspects", 0]].each do |list, floor|
        while json.bytesize > PAYLOAD_MAX && (items = reply.dig("summary", list)).is_a?(Array) && items.size > floor
          reply["summary"] = reply["summary"].merge(list => items[0...-1])
          json = JSON.generate(reply)
        end
      end
      json
    end

    # The parsed reply, or nil for anything that isn't one.
    def parse_reply(text)
      reply = JSON.parse(text)
      reply.is_a?(Hash) ? reply : nil
    rescue JSON::ParserError
      nil
    end

    def scrub(str)
      Util.utf8(str).scrub
    end

    # A value JSON can carry: strings scrubbed to UTF-8, NaN and other objects as text.
    def plain(value)
      case value
      when String then scrub(value)
      when Integer, true, false, nil then value
      when Float then value.finite? ? value : value.to_s
      when Array then value.map { |v| plain(v) }
      when Hash then value.to_h { |k, v| [k.to_s, plain(v)] }
      else scrub(value.to_s)
      end
    end
  end
end
