# frozen_string_literal: true

require "socket"

module HeapCapture
  # Which process is selected: its dyno name (HEAPCAPTURE_DYNO, else Heroku's DYNO) must be one of
  # "<process_type>.1" .. "<process_type>.<dynos>". Also the notification channel names.
  module Dyno
    PROCESS_TYPE = /\A[a-z0-9_]+\z/
    CHANNEL_PREFIX = "heapcapture_"
    CHANNEL_MAX = Listener::Connection::CHANNEL_MAX # listener.h: PostgreSQL's identifier limit

    # selected: true/false; dyno: the name seen (nil when none); channel: where to LISTEN when
    # selected; reason: the log line that says why not.
    Selection = Struct.new(:selected, :dyno, :channel, :reason, keyword_init: true) do
      alias_method :selected?, :selected
    end

    module_function

    # [name, the variable it came from] or [nil, nil].
    def current(env = ENV)
      %w[HEAPCAPTURE_DYNO DYNO].each do |var|
        value = env[var]&.strip
        return [value, var] unless value.nil? || value.empty?
      end
      [nil, nil]
    end

    # The name this process goes by in results and object keys: the dyno name, else the host
    # name, with anything outside [A-Za-z0-9._-] replaced so it is safe in a key.
    def label(env = ENV)
      name = current(env).first || Socket.gethostname
      name.gsub(/[^A-Za-z0-9._-]/, "_")
    end

    def names(process_type, dynos)
      process_type = validate!(process_type, dynos)
      (1..dynos).map { |n| "#{process_type}.#{n}" }
    end

    # heapcapture_web_1 .. heapcapture_web_<dynos>
    def channels(process_type, dynos)
      process_type = validate!(process_type, dynos)
      (1..dynos).map { |n| channel(process_type, n) }
    end

    def channel(process_type, number)
      "#{CHANNEL_PREFIX}#{process_type}_#{number}"
    end

    def select(process_type, dynos, env = ENV)
      expected = names(process_type, dynos)
      process_type = process_type.to_s
      name, var = current(env)
      if name && expected.include?(name)
        return Selection.new(selected: true, dyno: name, channel: channel(process_type, name.split(".").last))
      end

      seen = name ? "#{var} is #{name.inspect}" : "neither HEAPCAPTURE_DYNO nor DYNO is set"
      wanted = expected.size == 1 ? expected.first : "one of #{expected.first}..#{expected.last}"
      reason = "not armed in this process (pid #{Process.pid}): #{seen}, expected #{wanted} " \
               "(process_type: #{process_type.inspect}, dynos: #{dynos}); " \
               "set HEAPCAPTURE_DYNO=#{expected.first} to select this process off Heroku"
      Selection.new(selected: false, dyno: name, channel: nil, reason: reason)
    end

    # Returns the process type as a String (:web is "web"), or raises ArgumentError saying why not.
    def validate!(process_type, dynos)
      process_type = process_type.to_s if process_type.is_a?(Symbol)
      unless process_type.is_a?(String) && PROCESS_TYPE.match?(process_type)
        raise ArgumentError, Util.prefixed("process_type must be lower case letters, digits and _ " \
                                           "(it names the channel heapcapture_<process_type>_<n>), got #{process_type.inspect}")
      end
      unless dynos.is_a?(Integer) && dynos >= 1
        raise ArgumentError, Util.prefixed("dynos must be an Integer of at least 1, got #{dynos.inspect}")
      end

      longest = channel(process_type, dynos)
      return process_type if longest.bytesize <= CHANNEL_MAX

      raise ArgumentError, Util.prefixed("the channel #{longest} is #{longest.bytesize} bytes; PostgreSQL " \
                                         "allows #{CHANNEL_MAX}: use a shorter process_type")
    end
  end
end
