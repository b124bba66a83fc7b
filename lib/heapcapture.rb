# frozen_string_literal: true

# heapcapture: on-demand heap dumps of a production Ruby process, shipped to S3.
# Start reading at lib/heapcapture/configuration.rb (every setting) and the public methods below;
# the native work is in ext/heapcapture (start at heapcapture.c).
require_relative "heapcapture/version"
require_relative "heapcapture/heapcapture" # the native extension: defines HeapCapture::Error and friends
require_relative "heapcapture/errors"
require_relative "heapcapture/log"
require_relative "heapcapture/configuration"
require_relative "heapcapture/sigv4"
require_relative "heapcapture/dyno"
require_relative "heapcapture/wire"
require_relative "heapcapture/listener"
require_relative "heapcapture/exclusive"
require_relative "heapcapture/signal"
require_relative "heapcapture/report"
require_relative "heapcapture/s3"
require_relative "heapcapture/destination"
require_relative "heapcapture/capture"
require_relative "heapcapture/railtie" if defined?(::Rails::Railtie)

module HeapCapture
  class << self
    # The process-wide settings; every setting has an environment default.
    def config
      @config ||= Configuration.new
    end

    # HeapCapture.configure { |c| c.compression = :none }
    def configure
      yield config
      config
    end

    # Forget every setting (tests, and a process that wants to re-read its environment).
    def reset_config!
      @config = nil
    end
  end
end
