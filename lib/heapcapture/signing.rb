# frozen_string_literal: true

require "json"

module HeapCapture
  # Signed signals and sealed replies (doc/security.md). Any database role can NOTIFY and LISTEN on
  # every channel: with a signal_key, an armed process acts only on a request whose MAC
  # (HMAC-SHA256, SignalAuth in C) covers its channel, payload, trace_for, time, nonce and reply
  # key, fresh within WINDOW and not seen before; and a reply never carries the presigned URL in the
  # clear: for a request with a reply key, the URL and location are sealed to it (libsodium's
  # sealed box, Seal in C), and the signaller opens them.
  module Signing
    WINDOW = 300 # seconds a signed request is good for, either side of the armed process's clock
    NONCES = 1024 # signed requests remembered within the window: past that, more are refused
    UNSIGNED = "unsigned: this process acts only on notifications signed with its signal_key " \
               "(HEAPCAPTURE_SIGNAL_KEY); signal with heapcapture signal, the rake task or HeapCapture.signal " \
               "where that key is set"
    BAD_MAC = "bad signature: not signed with this process's signal_key, or changed on the way"

    module_function

    # Why request (a Wire::Request on channel) may not act under key, or nil when it may; a fresh
    # nonce is remembered in nonces (a SignalAuth::NonceCache). Without a key, nil.
    def refusal(request, channel, key, nonces, now: Time.now.to_i)
      return nil unless key
      return UNSIGNED unless (signed = request.signed)
      return BAD_MAC unless mac_valid?(request, channel, key)

      age = now - signed["time"]
      if age.abs > WINDOW
        return "stale: signed #{age.positive? ? "#{age} s ago" : "#{-age} s ahead of this process's clock"}; " \
               "a signed notification is good for #{WINDOW} s (check both machines' clocks)"
      end
      case nonces.add(signed["nonce"], signed["time"], now, WINDOW)
      when :replayed then "replayed: this signed notification was received before; each one acts once"
      when :full then "#{NONCES} signed notifications in #{WINDOW} s: more are refused until the oldest are older"
      end
    end

    def mac_valid?(request, channel, key)
      signed = request.signed
      trace_for = request.trace_for
      return false unless signed["time"].is_a?(Integer) && signed["mac"].is_a?(String) && signed["mac"].size == 64 &&
                          (trace_for.nil? || trace_for.is_a?(Integer))

      expected = SignalAuth.mac(key, channel, signed["time"], signed["nonce"].to_s, trace_for, signed["reply_key"],
                                request.payload)
      SignalAuth.equal?(expected, [signed["mac"]].pack("H*"))
    rescue ArgumentError, TypeError # a nonce or reply key the MAC refuses: not what a signaller sends
      false
    end

    # What a request's sender reads on heapcapture_reply of result: never the URL in the clear;
    # with the request's reply key, the URL and location sealed to it ("sealed", base64).
    def reply(result, reply_key)
      clear = result.except("url")
      return clear unless reply_key

      secret = result.slice("url", "location").compact
      return clear if secret.empty?

      sealed = clear.except("location")
      return sealed.merge("sealed_error" => "this build of heapcapture has no libsodium: it cannot seal") unless Seal::AVAILABLE

      key = reply_key.is_a?(String) ? reply_key.unpack1("m0") : ""
      sealed.merge("sealed" => [Seal.seal(JSON.generate(secret), key)].pack("m0"))
    rescue ArgumentError, Error => e # a reply key that is no X25519 key: nothing sent in the clear
      sealed.merge("sealed_error" => "the request's reply_key could not be sealed to: #{Util.unprefixed(e.message)}")
    end

    # The signaller's side: reply with its "sealed" part opened with the request's keys (pk, sk).
    def open_reply(reply, public_key, secret_key)
      return reply unless reply["sealed"].is_a?(String) && secret_key

      opened = JSON.parse(Seal.open(reply["sealed"].unpack1("m0"), public_key, secret_key))
      reply.except("sealed").merge(opened.slice("url", "location"))
    rescue ArgumentError, JSON::ParserError, Error => e
      reply.except("sealed").merge("sealed_error" => Util.unprefixed(e.message))
    end
  end
end
