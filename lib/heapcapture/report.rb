# frozen_string_literal: true

module HeapCapture
  # How results are shown to a person: one line each (the CLI and the Rake task print these).
  module Report
    module_function

    def line(result)
      who = "#{result['dyno'] || '?'} pid #{result['pid'] || '?'}"
      if result["status"] == "ok"
        size = result["bytes"] ? " #{result['bytes']} bytes" : ""
        url = result["url"] ? " #{result['url']}" : ""
        "#{who}: ok #{result['location']}#{size}#{url}"
      else
        "#{who}: #{result['status'] || 'error'} #{result['error'] || '(no message)'}"
      end
    end

    def all_ok?(results)
      !results.empty? && results.all? { |r| r["status"] == "ok" }
    end
  end
end
