# frozen_string_literal: true

module HeapCapture
  class Listener
    # The capture a notification runs, through a seam tests replace: a callable taking the payload
    # String and returning the result Hash (HeapCapture.capture unless set).
    module CaptureHook
      DEFAULT = ->(payload) { HeapCapture.capture(payload) }

      # Listener.capture_hook, .capture_hook=, .reset_capture_hook!
      module Seam
        attr_writer :capture_hook

        def capture_hook = @capture_hook || DEFAULT
        def reset_capture_hook! = @capture_hook = nil
      end

      private

      # The result with string keys. A capture that raised, or answered with something else than a
      # result, has logged nothing: its error is logged here.
      def call_hook(payload)
        result = self.class.capture_hook.call(payload)
        return result.transform_keys(&:to_s) if result.is_a?(Hash)

        hook_failed("the capture returned #{result.class}, not a result Hash")
      rescue StandardError, ScriptError => e
        hook_failed("#{e.class}: #{e.message}")
      end

      def hook_failed(error)
        Log.error("capture failed: #{error}")
        { "status" => "error", "error" => error }
      end
    end
  end
end
